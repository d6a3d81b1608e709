"""The WebService component: image, task, load balancer, service, scaling, WAF, roles, bad arguments."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from awsblocks.aws_values import FARGATE_MEMORY_MB, fargate_memory_options
from awsblocks.security.iam import dynamodb_read_write, sns_publish
from awsblocks.testing import DeclaredResource, Synthesis
from awsblocks.web.build_context import context_tag
from awsblocks.web.web_service import (
    WafArgs,
    WebService,
    WebServiceArgs,
    elb_log_delivery_principal,
    looks_secret,
)

from tests.conftest import TEST_REGION, SynthFn

ACCOUNT = "123456789012"
CERT = f"arn:aws:acm:{TEST_REGION}:{ACCOUNT}:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
TABLE_ARN = f"arn:aws:dynamodb:{TEST_REGION}:{ACCOUNT}:table/orders"
TOPIC_ARN = f"arn:aws:sns:{TEST_REGION}:{ACCOUNT}:events"
SSM_ARN = f"arn:aws:ssm:{TEST_REGION}:{ACCOUNT}:parameter/web/db-password"
SECRET_ARN = f"arn:aws:secretsmanager:{TEST_REGION}:{ACCOUNT}:secret:web/api-key-AbCdEf"
PREBUILT = f"{ACCOUNT}.dkr.ecr.{TEST_REGION}.amazonaws.com/web:commit-abc123"

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LISTENER = "aws:lb/listener:Listener"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A tiny build context: a Dockerfile and one source file."""
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY app.py /srv/\n")
    (tmp_path / "app.py").write_text("print('hello')\n")
    return tmp_path


def base_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "vpc_id": "vpc-0123",
        "public_subnet_ids": ["subnet-pub-a", "subnet-pub-b"],
        "private_subnet_ids": ["subnet-priv-a", "subnet-priv-b"],
        "image_uri": PREBUILT,
    }
    args.update(overrides)
    return args


def web(synth: SynthFn, **overrides: Any) -> Synthesis:
    args = base_args(**overrides)
    if "build_context" in overrides:
        args.pop("image_uri", None)
    return synth(program=lambda: WebService("web", WebServiceArgs(**args)))


def component(s: Synthesis) -> DeclaredResource:
    return next(r for r in s.resources if r.type == "awsblocks:index:WebService")


def container_definition(s: Synthesis) -> dict[str, Any]:
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    return dict(container)


def policy_statements(resource: DeclaredResource) -> list[dict[str, Any]]:
    return list(json.loads(resource.inputs["policy"])["Statement"])


# --- network exposure -------------------------------------------------------------------


@pytest.mark.parametrize(("certificate", "world_ports"), [(None, {80}), (CERT, {80, 443})])
def test_only_the_albs_group_admits_the_internet_and_only_on_http_ports(
    synth: SynthFn, certificate: str | None, world_ports: set[int]
) -> None:
    s = web(synth, certificate_arn=certificate)
    groups = {r.id: r for r in s.of_type(SG)}
    alb_sg = s.named("web-alb-sg").id
    service_sg = s.named("web-service-sg").id
    assert set(groups) == {alb_sg, service_sg}
    for group in groups.values():
        assert not group.inputs.get("ingress") and not group.inputs.get("egress"), "rules are standalone"

    ingress = s.of_type(INGRESS)
    world = [r for r in ingress if r.inputs.get("cidrIpv4") == "0.0.0.0/0" or r.inputs.get("cidrIpv6")]
    assert {r.inputs["securityGroupId"] for r in world} == {alb_sg}
    assert {(r.inputs["fromPort"], r.inputs["toPort"]) for r in world} == {(p, p) for p in world_ports}
    (to_tasks,) = [r for r in ingress if r.inputs["securityGroupId"] == service_sg]
    assert to_tasks.inputs["referencedSecurityGroupId"] == alb_sg
    assert (to_tasks.inputs["fromPort"], to_tasks.inputs["toPort"]) == (8080, 8080)

    egress = {r.inputs["securityGroupId"]: r for r in s.of_type(EGRESS)}
    assert egress[alb_sg].inputs["referencedSecurityGroupId"] == service_sg
    assert "cidrIpv4" not in egress[alb_sg].inputs
    assert (egress[alb_sg].inputs["fromPort"], egress[alb_sg].inputs["toPort"]) == (8080, 8080)
    assert (egress[service_sg].inputs["fromPort"], egress[service_sg].inputs["toPort"]) == (443, 443)


def test_tasks_run_in_private_subnets_without_public_ips(synth: SynthFn) -> None:
    s = web(synth)
    (service,) = s.of_type("aws:ecs/service:Service")
    network = service.inputs["networkConfiguration"]
    assert network["assignPublicIp"] is False
    assert network["subnets"] == ["subnet-priv-a", "subnet-priv-b"]
    assert network["securityGroups"] == [s.named("web-service-sg").id]
    assert service.inputs["launchType"] == "FARGATE"
    assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service.inputs["desiredCount"] == 2
    (balancer,) = service.inputs["loadBalancers"]
    (listener,) = s.of_type(LISTENER)
    forward_target = listener.inputs["defaultActions"][0]["targetGroupArn"]
    assert balancer == {"targetGroupArn": forward_target, "containerName": "web", "containerPort": 8080}


def test_spot_runs_the_tasks_on_fargate_spot_which_the_cluster_offers(synth: SynthFn) -> None:
    on_demand = web(synth)
    (service,) = on_demand.of_type("aws:ecs/service:Service")
    assert not service.inputs.get("capacityProviderStrategies")

    s = web(synth, spot=True)
    (service,) = s.of_type("aws:ecs/service:Service")
    assert "launchType" not in service.inputs
    assert service.inputs["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    (providers,) = s.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert set(providers.inputs["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    assert providers.inputs["clusterName"] == s.of_type("aws:ecs/cluster:Cluster")[0].state["name"]


# --- load balancer ------------------------------------------------------------------------


def test_with_a_certificate_https_serves_tls12_plus_and_http_redirects(synth: SynthFn) -> None:
    s = web(synth, certificate_arn=CERT)
    listeners = {r.inputs["port"]: r for r in s.of_type(LISTENER)}
    assert set(listeners) == {80, 443}
    https = listeners[443].inputs
    assert https["protocol"] == "HTTPS" and https["certificateArn"] == CERT
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["defaultActions"][0]["type"] == "forward"
    (redirect,) = listeners[80].inputs["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}
    assert component(s).outputs["url"].startswith("https://")


def test_a_tls13_only_policy_is_accepted(synth: SynthFn) -> None:
    s = web(synth, certificate_arn=CERT, ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06")
    listeners = {r.inputs["port"]: r for r in s.of_type(LISTENER)}
    assert listeners[443].inputs["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-3-2021-06"


def test_with_a_certificate_nothing_is_forwarded_in_clear_text(synth: SynthFn) -> None:
    s = web(synth, certificate_arn=CERT)
    for listener in s.of_type(LISTENER):
        forwards = [a for a in listener.inputs["defaultActions"] if a["type"] == "forward"]
        assert (listener.inputs["protocol"] == "HTTPS") == bool(forwards), listener.name
    ingress = {r.inputs["fromPort"]: r for r in s.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"}
    assert "redirect to HTTPS" in ingress[80].inputs["description"]


def test_without_a_certificate_http_forwards_and_the_program_warns(
    synth: SynthFn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        s = web(synth)
    (listener,) = s.of_type(LISTENER)
    assert listener.inputs["port"] == 80 and listener.inputs["protocol"] == "HTTP"
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert component(s).outputs["url"].startswith("http://")
    assert any("no certificate_arn" in record.getMessage() for record in caplog.records)


def test_load_balancer_is_hardened_and_logs_to_its_bucket(synth: SynthFn) -> None:
    s = web(synth)
    (alb,) = s.of_type("aws:lb/loadBalancer:LoadBalancer")
    bucket = s.named("web-alb-logs", "aws:s3/bucket:Bucket")
    assert alb.inputs["internal"] is False
    assert alb.inputs["subnets"] == ["subnet-pub-a", "subnet-pub-b"]
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["desyncMitigationMode"] == "defensive"
    assert alb.inputs["enableDeletionProtection"] is False
    assert alb.inputs["accessLogs"] == {"bucket": bucket.id, "prefix": "web", "enabled": True}
    assert (
        web(synth, deletion_protection=True, desync_mitigation_mode="strictest")
        .named("web-alb")
        .inputs["enableDeletionProtection"]
    )


def test_access_log_bucket_is_private_versioned_encrypted_tls_only_and_expires(synth: SynthFn) -> None:
    s = web(synth, access_log_retention_days=45)
    bucket = s.named("web-alb-logs", "aws:s3/bucket:Bucket")
    block = s.named("web-alb-logs-public-block").inputs
    assert block["bucket"] == bucket.id
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert s.named("web-alb-logs-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = s.named("web-alb-logs-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    (lifecycle,) = s.named("web-alb-logs-lifecycle").inputs["rules"]
    assert lifecycle["status"] == "Enabled" and lifecycle["expiration"]["days"] == 45

    statements = {st["Sid"]: st for st in policy_statements(s.named("web-alb-logs-policy"))}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    write = statements["ElbWritesAccessLogs"]
    assert write["Principal"] == {"AWS": "arn:aws:iam::600734575887:root"}
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"].endswith(f"/web/AWSLogs/{ACCOUNT}/*")


def test_regions_without_an_elb_account_use_the_log_delivery_service_principal() -> None:
    assert elb_log_delivery_principal("ap-northeast-2") == {"AWS": "arn:aws:iam::600734575887:root"}
    assert elb_log_delivery_principal("ap-southeast-5") == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"
    }


def test_target_group_checks_health_on_the_given_path_with_ip_targets(synth: SynthFn) -> None:
    (tg,) = web(synth, health_check_path="/ready", container_port=8000).of_type(
        "aws:lb/targetGroup:TargetGroup"
    )
    assert tg.inputs["targetType"] == "ip" and tg.inputs["port"] == 8000
    assert tg.inputs["healthCheck"]["path"] == "/ready"
    assert tg.inputs["healthCheck"]["matcher"] == "200"


# --- image -----------------------------------------------------------------------------------


def test_repository_scans_on_push_keeps_tags_immutable_encrypts_and_expires_old_images(
    synth: SynthFn,
) -> None:
    s = web(synth, image_retention_count=7)
    (repo,) = s.of_type("aws:ecr/repository:Repository")
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    # Immutable but for the content tags the component pushes (tests/infra/test_image_digest.py).
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo.inputs["imageTagMutabilityExclusionFilters"] == [
        {"filter": "ctx-*", "filterType": "WILDCARD"}
    ]
    (encryption,) = repo.inputs["encryptionConfigurations"]
    assert encryption["encryptionType"] == "KMS" and encryption["kmsKey"].startswith("arn:aws:kms:")
    rules = json.loads(s.named("web-repo-lifecycle").inputs["policy"])["rules"]
    keep = next(r for r in rules if r["selection"]["tagStatus"] == "any")
    assert keep["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert keep["rulePriority"] == max(r["rulePriority"] for r in rules), "'any' must be evaluated last"


def test_the_image_is_built_from_the_context_and_tagged_by_its_content(synth: SynthFn, context: Path) -> None:
    s = web(synth, build_context=str(context), cpu_architecture="ARM64")
    (image,) = s.of_type("docker:index/image:Image")
    tag = context_tag(context, context / "Dockerfile", platform="linux/arm64")
    repo_url = component(s).outputs["repository_url"]
    assert image.inputs["imageName"] == f"{repo_url}:{tag}"
    assert image.inputs["build"]["platform"] == "linux/arm64"
    assert Path(image.inputs["build"]["dockerfile"]).resolve() == (context / "Dockerfile").resolve()
    assert image.inputs["registry"]["username"] == "AWS"
    assert container_definition(s)["image"] == image.state["repoDigest"]
    task = s.of_type("aws:ecs/taskDefinition:TaskDefinition")[0]
    assert task.inputs["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}

    again = web(synth, build_context=str(context), cpu_architecture="ARM64")
    assert again.of_type("docker:index/image:Image")[0].inputs["imageName"] == image.inputs["imageName"]
    (context / "app.py").write_text("print('changed')\n")
    changed = web(synth, build_context=str(context), cpu_architecture="ARM64")
    assert changed.of_type("docker:index/image:Image")[0].inputs["imageName"] != image.inputs["imageName"]


def test_a_prebuilt_image_is_deployed_without_a_build(synth: SynthFn) -> None:
    s = web(synth)
    assert s.of_type("docker:index/image:Image") == []
    assert container_definition(s)["image"] == PREBUILT
    assert len(s.of_type("aws:ecr/repository:Repository")) == 1, "the pipeline pushes to the repository"


# --- task ------------------------------------------------------------------------------------


def test_container_is_read_only_unprivileged_non_root_and_logs_to_its_group(synth: SynthFn) -> None:
    s = web(
        synth,
        environment={"TABLE": "orders", "MODE": "live"},
        secrets={"DB_PASSWORD": SSM_ARN, "API_KEY": SECRET_ARN},
        log_retention_days=90,
    )
    container = container_definition(s)
    assert container["readonlyRootFilesystem"] is True
    assert container["privileged"] is False
    assert container["user"] == "1000:1000"
    assert container["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert task.inputs["volumes"] == [{"name": "tmp"}]
    assert task.inputs["requiresCompatibilities"] == ["FARGATE"] and task.inputs["networkMode"] == "awsvpc"
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("256", "512")

    log_group = s.named("web-logs")
    assert log_group.inputs["retentionInDays"] == 90
    assert log_group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    log = container["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    assert log["options"]["awslogs-group"] == component(s).outputs["log_group_name"]
    assert log["options"]["awslogs-region"] == TEST_REGION

    assert container["environment"] == [
        {"name": "MODE", "value": "live"},
        {"name": "TABLE", "value": "orders"},
    ]
    assert container["secrets"] == [
        {"name": "API_KEY", "valueFrom": SECRET_ARN},
        {"name": "DB_PASSWORD", "valueFrom": SSM_ARN},
    ]
    assert container["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]


def test_task_role_holds_exactly_the_declared_grants(synth: SynthFn) -> None:
    grants = [
        dynamodb_read_write(TABLE_ARN, [f"{TABLE_ARN}/index/byCustomer"], label="orders"),
        sns_publish(TOPIC_ARN, label="events"),
    ]
    s = web(synth, grants=grants)
    task_role = s.named("web-task-role")
    execution_role = s.named("web-execution-role")
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert task.inputs["taskRoleArn"] != task.inputs["executionRoleArn"]
    policies = {r.inputs["role"]: r for r in s.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert set(policies) == {task_role.id, execution_role.id}
    assert policy_statements(policies[task_role.id]) == [
        {
            "Sid": g.sid,
            "Effect": "Allow",
            "Action": sorted(g.actions),
            "Resource": list(g.resources),
        }
        for g in grants
    ]
    assert s.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_without_grants_the_task_role_has_no_policy(synth: SynthFn) -> None:
    s = web(synth)
    roles = {r.inputs["role"] for r in s.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert roles == {s.named("web-execution-role").id}


def test_execution_role_pulls_from_its_repository_writes_its_logs_and_reads_only_named_secrets(
    synth: SynthFn,
) -> None:
    key = f"arn:aws:kms:{TEST_REGION}:{ACCOUNT}:key/secrets"
    s = web(synth, secrets={"DB_PASSWORD": SSM_ARN, "API_KEY": SECRET_ARN}, secrets_kms_key_arns=[key])
    (policy,) = [
        r
        for r in s.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == s.named("web-execution-role").id
    ]
    by_action = {tuple(st["Action"]): st["Resource"] for st in policy_statements(policy)}
    outputs = component(s).outputs
    repo_name = outputs["repository_url"].rsplit("/", 1)[1]
    log_arn = f"arn:aws:logs:{TEST_REGION}:{ACCOUNT}:{outputs['log_group_name']}"
    pull = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
    assert by_action[pull] == [f"arn:aws:ecr:{TEST_REGION}:{ACCOUNT}:{repo_name}"]
    assert by_action[("ecr:GetAuthorizationToken",)] == ["*"]
    assert by_action[("logs:CreateLogStream", "logs:PutLogEvents")] == [log_arn, f"{log_arn}:*"]
    assert by_action[("ssm:GetParameters",)] == [SSM_ARN]
    assert by_action[("secretsmanager:GetSecretValue",)] == [SECRET_ARN]
    assert by_action[("kms:Decrypt",)] == [key]
    assert len(by_action) == 6
    for role in ("web-execution-role", "web-task-role"):
        trust = json.loads(s.named(role).inputs["assumeRolePolicy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_fargate_combinations_are_the_documented_ones() -> None:
    assert fargate_memory_options(256) == (512, 1024, 2048)
    assert fargate_memory_options(1024) == tuple(range(2048, 8193, 1024))
    assert fargate_memory_options(300) == ()
    assert set(FARGATE_MEMORY_MB) == {256, 512, 1024, 2048, 4096, 8192, 16384}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("API_KEY", True),
        ("STRIPE_SECRET_KEY", True),
        ("GITHUB_TOKEN", True),
        ("PRIVATEKEY", True),
        ("KMS_KEY_ARN", False),
        ("TOKEN_ENDPOINT_URL", True),
        ("FUNDINGS_TABLE", False),
        ("COGNITO_APP_CLIENT_ID", False),
        ("PAYMENTS_TOPIC_ARN", False),
        ("MONKEY_BUSINESS", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


# --- scaling, cluster -------------------------------------------------------------------------


def test_autoscaling_tracks_cpu_and_requests_per_target_between_min_and_max(synth: SynthFn) -> None:
    s = web(synth, min_count=2, desired_count=3, max_count=6, cpu_target_percent=55, requests_per_target=800)
    (target,) = s.of_type("aws:appautoscaling/target:Target")
    outputs = component(s).outputs
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 6)
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    assert target.inputs["resourceId"] == f"service/{outputs['cluster_name']}/{outputs['service_name']}"
    policies = {
        r.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]: r.inputs
        for r in s.of_type("aws:appautoscaling/policy:Policy")
    }
    assert set(policies) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    cpu = policies["ECSServiceAverageCPUUtilization"]["targetTrackingScalingPolicyConfiguration"]
    assert cpu["targetValue"] == 55
    requests = policies["ALBRequestCountPerTarget"]["targetTrackingScalingPolicyConfiguration"]
    assert requests["targetValue"] == 800
    label = requests["predefinedMetricSpecification"]["resourceLabel"]
    assert label == f"{outputs['alb_arn_suffix']}/{outputs['target_group_arn_suffix']}"
    assert label.startswith("app/") and "/targetgroup/" in label
    assert all(p["resourceId"] == target.inputs["resourceId"] for p in policies.values())
    assert s.of_type("aws:ecs/service:Service")[0].inputs["desiredCount"] == 3


def test_cluster_has_container_insights_or_an_existing_one_is_used(synth: SynthFn) -> None:
    (cluster,) = web(synth).of_type("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"]
    existing = f"arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:cluster/shared"
    s = web(synth, cluster_arn=existing)
    assert s.of_type("aws:ecs/cluster:Cluster") == []
    assert s.of_type("aws:ecs/service:Service")[0].inputs["cluster"] == existing
    assert s.of_type("aws:appautoscaling/target:Target")[0].inputs["resourceId"].startswith("service/shared/")


# --- WAF ---------------------------------------------------------------------------------------


def test_no_waf_unless_asked(synth: SynthFn) -> None:
    s = web(synth)
    assert [r for r in s.resources if r.type.startswith("aws:wafv2/")] == []
    assert component(s).outputs.get("web_acl_arn") is None


def test_waf_has_managed_rules_and_a_rate_limit_is_associated_and_logs(synth: SynthFn) -> None:
    s = web(synth, waf=WafArgs(rate_limit=500))
    (acl,) = s.of_type("aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "REGIONAL"
    rules = sorted(acl.inputs["rules"], key=lambda r: r["priority"])
    managed = [
        r["statement"]["managedRuleGroupStatement"]
        for r in rules
        if "managedRuleGroupStatement" in r["statement"]
    ]
    assert [(m["vendorName"], m["name"]) for m in managed] == [
        ("AWS", "AWSManagedRulesCommonRuleSet"),
        ("AWS", "AWSManagedRulesKnownBadInputsRuleSet"),
    ]
    rate = rules[-1]
    assert rate["statement"]["rateBasedStatement"]["limit"] == 500
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    assert "block" in rate["action"]
    assert len({r["priority"] for r in rules}) == len(rules)

    (association,) = s.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs["resourceArn"] == component(s).outputs["alb_arn"]
    assert association.inputs["webAclArn"] == component(s).outputs["web_acl_arn"]
    waf_logs = s.named("web-waf-logs")
    assert waf_logs.inputs["name"].startswith("aws-waf-logs-")
    assert waf_logs.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    (logging_config,) = s.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging_config.inputs["resourceArn"] == association.inputs["webAclArn"]
    assert logging_config.inputs["logDestinationConfigs"][0].endswith(waf_logs.inputs["name"])


# --- structure and outputs ----------------------------------------------------------------------


def test_every_child_is_parented_and_outputs_are_registered(synth: SynthFn) -> None:
    s = web(synth, certificate_arn=CERT)
    root = component(s)
    assert {r.urn for r in s.descendants(root)} == {r.urn for r in s.resources if r is not root}
    outputs = root.outputs
    for key in (
        "url",
        "alb_arn_suffix",
        "target_group_arn_suffix",
        "cluster_name",
        "service_name",
        "task_role_arn",
        "task_role_name",
        "log_group_name",
        "repository_url",
        "image_uri",
    ):
        assert outputs.get(key), key
    assert outputs["alb_arn_suffix"].startswith("app/")
    assert outputs["target_group_arn_suffix"].startswith("targetgroup/")


def test_a_given_kms_key_is_used_instead_of_a_new_one(synth: SynthFn) -> None:
    key = f"arn:aws:kms:{TEST_REGION}:{ACCOUNT}:key/shared"
    s = web(synth, kms_key_arn=key)
    assert s.of_type("aws:kms/key:Key") == []
    assert s.named("web-logs").inputs["kmsKeyId"] == key
    assert s.named("web-repo").inputs["encryptionConfigurations"][0]["kmsKey"] == key


# --- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"min_count": 2, "desired_count": 1},
            r"desired_count=1 is outside min_count=2 .. max_count=4; allowed: min_count <= desired_count",
        ),
        ({"max_count": 1, "min_count": 2, "desired_count": 2}, r"max_count=1 is below min_count=2"),
        (
            {"environment": {"DB_PASSWORD": "hunter2"}},
            r"environment variable DB_PASSWORD looks like a secret and is passed as plain environment; "
            r"allowed: put its SSM parameter or Secrets Manager ARN in `secrets`",
        ),
        ({"secrets": {"DB_PASSWORD": "hunter2"}}, r"secrets\['DB_PASSWORD'\]='hunter2'; allowed: an SSM"),
        (
            {"certificate_arn": "arn:aws:iam::123456789012:server-certificate/web"},
            r"certificate_arn='arn:aws:iam::123456789012:server-certificate/web' is not an ACM certificate "
            r"ARN; allowed: arn:aws:acm:<region>:<account>:certificate/<id>",
        ),
        (
            {"cpu": 256, "memory_mb": 4096},
            r"memory_mb=4096 with cpu=256; allowed by Fargate: 512 to 2048 .*\(512, 1024, 2048\)",
        ),
        ({"cpu": 300}, r"cpu=300; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384"),
        ({"user": "root"}, r"user='root'; allowed: a non-root user"),
        ({"user": "0:0"}, r"user='0:0'; allowed: a non-root user"),
        ({"public_subnet_ids": ["subnet-pub-a"]}, r"1 public subnets; allowed: at least 2"),
        ({"image_uri": None}, r"allowed: exactly one of them"),
        (
            {"ssl_policy": "ELBSecurityPolicy-2016-08"},
            r"ssl_policy='ELBSecurityPolicy-2016-08'; allowed: a TLS 1.2\+",
        ),
        (
            {"ssl_policy": "ELBSecurityPolicy-TLS13-1-0-2021-06"},
            r"ssl_policy='ELBSecurityPolicy-TLS13-1-0-2021-06'; allowed: a TLS 1.2\+ policy that offers",
        ),
        (
            {"ssl_policy": "ELBSecurityPolicy-TLS-1-2-2017-01"},
            r"ssl_policy='ELBSecurityPolicy-TLS-1-2-2017-01'; allowed: a TLS 1.2\+ policy that offers",
        ),
        ({"waf": WafArgs(rate_limit=5)}, r"waf.rate_limit=5; allowed: 10 to 2000000000"),
        (
            {"desync_mitigation_mode": "monitor"},
            r"desync_mitigation_mode='monitor'; allowed: defensive, strictest",
        ),
    ],
)
def test_bad_arguments_fail_at_declaration(synth: SynthFn, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        web(synth, **overrides)


def test_a_secret_looking_name_may_be_vouched_for_or_left_empty(synth: SynthFn) -> None:
    s = web(
        synth,
        environment={"TOKEN_ISSUER_URL": "https://issuer", "API_KEY": ""},
        not_secret=["TOKEN_ISSUER_URL"],
    )
    assert {e["name"] for e in container_definition(s)["environment"]} == {"TOKEN_ISSUER_URL", "API_KEY"}


def test_a_bad_name_and_a_missing_dockerfile_fail_clearly(synth: SynthFn, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"name 'Web_Service'; allowed: 1-20 lowercase"):
        synth(program=lambda: WebService("Web_Service", WebServiceArgs(**base_args())))
    with pytest.raises(FileNotFoundError, match="Dockerfile"):
        web(synth, build_context=str(tmp_path))
