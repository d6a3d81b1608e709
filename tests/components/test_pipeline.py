"""The ContainerPipeline component: stages, build project, artifact bucket, exact grants, bad arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsblocks.core import AccountFacts
from awsblocks.delivery.container_pipeline import (
    BUILD_ENVIRONMENT,
    ContainerPipeline,
    ContainerPipelineArgs,
    ecr_repository_arn,
    ecs_service_arn,
)
from awsblocks.testing import DeclaredResource, Synthesis

from policies.adapters import evaluate_synthesis
from policies.engine import failures
from tests.conftest import TEST_REGION, SynthFn
from tests.infra.test_tags import is_taggable

ACCOUNT = "123456789012"
CONNECTION = (
    f"arn:aws:codeconnections:{TEST_REGION}:{ACCOUNT}:connection/5a1d0b7e-3c52-4f0e-9c6b-2d8e4f1a7b93"
)
REPO_URL = f"{ACCOUNT}.dkr.ecr.{TEST_REGION}.amazonaws.com/shop"
REPO_ARN = f"arn:aws:ecr:{TEST_REGION}:{ACCOUNT}:repository/shop"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-task"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-execution"
TOPIC = f"arn:aws:sns:{TEST_REGION}:{ACCOUNT}:alerts"
KEY = f"arn:aws:kms:{TEST_REGION}:{ACCOUNT}:key/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
SERVICE_ARN = f"arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:service/shop-cluster/shop-service"

PIPELINE = "aws:codepipeline/pipeline:Pipeline"
PROJECT = "aws:codebuild/project:Project"


def base_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "connection_arn": CONNECTION,
        "repository": "example-org/shop",
        "branch": "release",
        "cluster_name": "shop-cluster",
        "service_name": "shop-service",
        "container_name": "shop",
        "image_repository_url": REPO_URL,
        "pass_role_arns": [TASK_ROLE, EXECUTION_ROLE],
    }
    args.update(overrides)
    return args


def delivery(synth: SynthFn, **overrides: Any) -> Synthesis:
    args = base_args(**overrides)
    return synth(program=lambda: ContainerPipeline("shop-delivery", ContainerPipelineArgs(**args)))


def pipeline_of(s: Synthesis) -> DeclaredResource:
    (pipeline,) = s.of_type(PIPELINE)
    return pipeline


def statements(s: Synthesis, policy_name: str) -> dict[str, dict[str, Any]]:
    document = json.loads(s.named(policy_name).inputs["policy"])
    return {statement["Sid"]: statement for statement in document["Statement"]}


def key_arn(s: Synthesis) -> str:
    (key,) = s.of_type("aws:kms/key:Key")
    return str(key.state["arn"])


# --- stages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approval", "stages"),
    [(False, ["Source", "Build", "Deploy"]), (True, ["Source", "Build", "Approval", "Deploy"])],
)
def test_stages_run_in_order_with_approval_only_when_asked(
    synth: SynthFn, approval: bool, stages: list[str]
) -> None:
    pipeline = pipeline_of(delivery(synth, require_approval=approval))
    assert pipeline.inputs["pipelineType"] == "V2"
    assert [stage["name"] for stage in pipeline.inputs["stages"]] == stages
    providers = [stage["actions"][0]["provider"] for stage in pipeline.inputs["stages"]]
    expected = ["CodeStarSourceConnection", "CodeBuild", *(["Manual"] if approval else []), "ECS"]
    assert providers == expected


def test_source_reads_the_branch_through_the_connection_as_a_full_clone(synth: SynthFn) -> None:
    (source,) = pipeline_of(delivery(synth)).inputs["stages"][0]["actions"]
    assert source["configuration"] == {
        "ConnectionArn": CONNECTION,
        "FullRepositoryId": "example-org/shop",
        "BranchName": "release",
        "OutputArtifactFormat": "CODEBUILD_CLONE_REF",
        "DetectChanges": "true",
    }
    assert source["outputArtifacts"] == ["source"]


def test_build_feeds_the_ecs_deploy_of_exactly_that_service(synth: SynthFn) -> None:
    s = delivery(synth)
    stages = pipeline_of(s).inputs["stages"]
    (build,) = stages[1]["actions"]
    (deploy,) = stages[-1]["actions"]
    (project,) = s.of_type(PROJECT)
    assert build["configuration"] == {"ProjectName": project.state["name"]}
    assert build["inputArtifacts"] == ["source"] and build["outputArtifacts"] == ["image"]
    assert deploy["inputArtifacts"] == ["image"]
    assert deploy["configuration"] == {
        "ClusterName": "shop-cluster",
        "ServiceName": "shop-service",
        "FileName": "imagedefinitions.json",
        "DeploymentTimeout": "30",
    }


# --- build project ------------------------------------------------------------------------


def test_build_runs_the_repositorys_buildspec_on_a_managed_image_with_plain_values_only(
    synth: SynthFn,
) -> None:
    s = delivery(synth, kms_key_arn=KEY)
    (project,) = s.of_type(PROJECT)
    environment = project.inputs["environment"]
    assert environment["image"] == "aws/codebuild/standard:7.0"
    assert environment["type"] == "LINUX_CONTAINER"
    assert environment["imagePullCredentialsType"] == "CODEBUILD"
    assert environment["privilegedMode"] is True  # docker build needs the daemon
    assert environment["environmentVariables"] == [
        {"name": "REPO_URI", "value": REPO_URL, "type": "PLAINTEXT"},
        {"name": "CONTAINER_NAME", "value": "shop", "type": "PLAINTEXT"},
        {"name": "AWS_ACCOUNT_ID", "value": ACCOUNT, "type": "PLAINTEXT"},
        {"name": "IMAGE_REGION", "value": TEST_REGION, "type": "PLAINTEXT"},
    ]
    assert [v["name"] for v in environment["environmentVariables"]] == list(BUILD_ENVIRONMENT)
    assert project.inputs["source"] == {"type": "CODEPIPELINE", "buildspec": "buildspec.yml"}
    assert project.inputs["artifacts"] == {"type": "CODEPIPELINE"}
    assert project.inputs["encryptionKey"] == KEY
    assert project.inputs["serviceRole"] == s.named("shop-delivery-build-role").state["arn"]


def test_arm_builds_use_the_arm_image(synth: SynthFn) -> None:
    (project,) = delivery(synth, build_architecture="ARM64").of_type(PROJECT)
    assert project.inputs["environment"]["image"] == "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
    assert project.inputs["environment"]["type"] == "ARM_CONTAINER"


def test_build_logs_go_to_an_encrypted_group_with_retention(synth: SynthFn) -> None:
    s = delivery(synth, kms_key_arn=KEY, log_retention_days=14)
    group = s.named("shop-delivery-build-logs")
    assert group.inputs["retentionInDays"] == 14
    assert group.inputs["kmsKeyId"] == KEY
    (project,) = s.of_type(PROJECT)
    assert project.inputs["logsConfig"]["cloudwatchLogs"] == {
        "status": "ENABLED",
        "groupName": group.state["name"],
    }


# --- artifacts and key --------------------------------------------------------------------


def test_artifacts_live_in_a_versioned_private_tls_only_bucket_encrypted_with_the_cmk(synth: SynthFn) -> None:
    s = delivery(synth)
    key = key_arn(s)
    bucket = s.named("shop-delivery-artifacts")
    assert s.named("shop-delivery-artifacts-versioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    block = s.named("shop-delivery-artifacts-public-block").inputs
    assert all(
        block[flag]
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    (rule,) = s.named("shop-delivery-artifacts-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}
    (deny,) = json.loads(s.named("shop-delivery-artifacts-policy").inputs["policy"])["Statement"]
    bucket_arn = bucket.state["arn"]
    assert deny == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    (store,) = pipeline_of(s).inputs["artifactStores"]
    assert store == {"location": bucket.id, "type": "S3", "encryptionKey": {"id": key, "type": "KMS"}}


def test_its_own_key_rotates_and_lets_cloudwatch_logs_encrypt(synth: SynthFn) -> None:
    s = delivery(synth)
    (key,) = s.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    sids = {st["Sid"] for st in json.loads(key.inputs["policy"])["Statement"]}
    assert "CloudWatchLogsEncryptsThisAccountsLogGroups" in sids
    assert s.named("shop-delivery-build-logs").inputs["kmsKeyId"] == key.state["arn"]


def test_a_given_key_replaces_the_components_own(synth: SynthFn) -> None:
    s = delivery(synth, kms_key_arn=KEY)
    assert s.of_type("aws:kms/key:Key") == []
    assert pipeline_of(s).inputs["artifactStores"][0]["encryptionKey"] == {"id": KEY, "type": "KMS"}


# --- least privilege ----------------------------------------------------------------------


def test_build_role_may_push_to_that_repository_only(synth: SynthFn) -> None:
    s = delivery(synth, kms_key_arn=KEY)
    bucket_arn = s.named("shop-delivery-artifacts").state["arn"]
    group_arn = s.named("shop-delivery-build-logs").state["arn"]
    assert statements(s, "shop-delivery-build-policy") == {
        "ECRAuthImage": {
            "Sid": "ECRAuthImage",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": ["*"],
        },
        "ECRPullImage": {
            "Sid": "ECRPullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [REPO_ARN],
        },
        "ECRPushImage": {
            "Sid": "ECRPushImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:CompleteLayerUpload",
                "ecr:DescribeImages",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            "Resource": [REPO_ARN],
        },
        "LogsWriteBuild": {
            "Sid": "LogsWriteBuild",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [group_arn, f"{group_arn}:*"],
        },
        "ArtifactObjects": {
            "Sid": "ArtifactObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            "Resource": [f"{bucket_arn}/*"],
        },
        "ArtifactBucket": {
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
            "Resource": [bucket_arn],
        },
        "KMSUseArtifacts": {
            "Sid": "KMSUseArtifacts",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [KEY],
        },
        "UseSourceConnection": {
            "Sid": "UseSourceConnection",
            "Effect": "Allow",
            "Action": ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
            "Resource": [CONNECTION],
        },
    }


def test_pipeline_role_starts_that_build_updates_that_service_and_passes_only_its_roles(
    synth: SynthFn,
) -> None:
    s = delivery(synth, kms_key_arn=KEY)
    bucket_arn = s.named("shop-delivery-artifacts").state["arn"]
    (project,) = s.of_type(PROJECT)
    granted = statements(s, "shop-delivery-pipeline-policy")
    assert set(granted) == {
        "UseSourceConnection",
        "StartBuild",
        "ArtifactObjects",
        "ArtifactBucket",
        "KMSUseArtifacts",
        "DeployService",
        "TaskDefinitions",
        "TagNewTaskDefinition",
        "PassServiceRoles",
    }
    assert granted["UseSourceConnection"]["Resource"] == [CONNECTION]
    assert granted["StartBuild"]["Action"] == ["codebuild:BatchGetBuilds", "codebuild:StartBuild"]
    assert granted["StartBuild"]["Resource"] == [project.state["arn"]]
    assert granted["ArtifactObjects"]["Resource"] == [f"{bucket_arn}/*"]
    assert granted["KMSUseArtifacts"]["Resource"] == [KEY]
    assert granted["DeployService"] == {
        "Sid": "DeployService",
        "Effect": "Allow",
        "Action": ["ecs:DescribeServices", "ecs:UpdateService"],
        "Resource": [SERVICE_ARN],
    }
    assert granted["TaskDefinitions"] == {
        "Sid": "TaskDefinitions",
        "Effect": "Allow",
        "Action": ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
        "Resource": ["*"],
    }
    assert granted["TagNewTaskDefinition"] == {
        "Sid": "TagNewTaskDefinition",
        "Effect": "Allow",
        "Action": ["ecs:TagResource"],
        "Resource": [f"arn:aws:ecs:{TEST_REGION}:{ACCOUNT}:task-definition/*"],
        "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
    }
    assert granted["PassServiceRoles"] == {
        "Sid": "PassServiceRoles",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [TASK_ROLE, EXECUTION_ROLE],
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
    }


@pytest.mark.parametrize(("role", "service"), [("build", "codebuild"), ("pipeline", "codepipeline")])
def test_each_role_is_assumable_only_by_its_service_for_this_account(
    synth: SynthFn, role: str, service: str
) -> None:
    s = delivery(synth)
    (statement,) = json.loads(s.named(f"shop-delivery-{role}-role").inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": f"{service}.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_component_passes_every_policy_rule(synth: SynthFn) -> None:
    """Configured as prod configures it (a year of build logs: the pack's audit-length rule)."""
    s = delivery(synth, require_approval=True, alert_topic_arn=TOPIC, log_retention_days=365)
    assert [f.message for f in failures(evaluate_synthesis(s))] == []


# --- notifications ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approval", "events"),
    [
        (False, ["codepipeline-pipeline-pipeline-execution-failed"]),
        (
            True,
            [
                "codepipeline-pipeline-pipeline-execution-failed",
                "codepipeline-pipeline-manual-approval-needed",
            ],
        ),
    ],
)
def test_failures_notify_the_topic(synth: SynthFn, approval: bool, events: list[str]) -> None:
    s = delivery(synth, alert_topic_arn=TOPIC, require_approval=approval)
    (rule,) = s.of_type("aws:codestarnotifications/notificationRule:NotificationRule")
    assert rule.inputs["resource"] == pipeline_of(s).state["arn"]
    assert rule.inputs["targets"] == [{"address": TOPIC, "type": "SNS"}]
    assert rule.inputs["eventTypeIds"] == events


def test_no_topic_no_notification_rule(synth: SynthFn) -> None:
    assert delivery(synth).of_type("aws:codestarnotifications/notificationRule:NotificationRule") == []


def test_every_taggable_child_carries_its_component_tag(synth: SynthFn) -> None:
    s = delivery(synth, alert_topic_arn=TOPIC)
    taggable = [r for r in s.cloud_resources if is_taggable(r.type)]
    assert len(taggable) >= 8
    owners = set()
    for resource in taggable:
        component = s.component_of(resource)
        assert component is not None
        assert resource.inputs["tags"]["component"] == component.name, resource.name
        owners.add(component.name)
    assert owners == {"shop-delivery", "shop-delivery-key"}


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"connection_arn": "arn:aws:codecommit:ap-northeast-2:123456789012:shop"},
            "connection_arn='arn:aws:codecommit:ap-northeast-2:123456789012:shop'; allowed: a connection ARN "
            "arn:aws:codeconnections:<region>:<account>:connection/<uuid>",
        ),
        ({"repository": "shop"}, "repository='shop'; allowed: 'owner/name'"),
        ({"branch": "feature..x"}, "branch='feature..x'; allowed: a git branch name"),
        ({"container_name": ""}, "container_name=''; allowed: the task definition's container name"),
        (
            {"image_repository_url": f"{REPO_URL}:latest"},
            f"image_repository_url='{REPO_URL}:latest'; allowed: an ECR repository URL",
        ),
        ({"pass_role_arns": []}, "pass_role_arns is empty; allowed: the service's task role"),
        ({"pass_role_arns": ["shop-task"]}, "pass_role_arns has 'shop-task'; allowed: IAM role ARNs"),
        ({"build_architecture": "MIPS"}, "build_architecture='MIPS'; allowed: X86_64, ARM64"),
        ({"build_compute_type": "HUGE"}, "build_compute_type='HUGE'; allowed: BUILD_GENERAL1_SMALL"),
        ({"build_timeout_minutes": 1}, "build_timeout_minutes=1; allowed: 5 to 480"),
        ({"deploy_timeout_minutes": 90}, "deploy_timeout_minutes=90; allowed: 1 to 60"),
        ({"log_retention_days": 10}, "log_retention_days=10; allowed: 1, 3, 5"),
        ({"artifact_retention_days": 0}, "artifact_retention_days=0; allowed: 1 or more"),
        ({"buildspec": "/etc/buildspec.yml"}, "buildspec='/etc/buildspec.yml'; allowed: a path inside"),
    ],
)
def test_bad_arguments_fail_at_declaration_naming_the_argument(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        ContainerPipeline("shop-delivery", ContainerPipelineArgs(**base_args(**overrides)))
    assert str(raised.value).startswith("ContainerPipeline shop-delivery: ")
    assert message in str(raised.value)


def test_the_older_codestar_connections_arn_form_is_accepted(synth: SynthFn) -> None:
    legacy = CONNECTION.replace("codeconnections", "codestar-connections")
    (source,) = pipeline_of(delivery(synth, connection_arn=legacy)).inputs["stages"][0]["actions"]
    assert source["configuration"]["ConnectionArn"] == legacy


# --- ARN helpers --------------------------------------------------------------------------


def test_repository_arn_is_derived_from_its_url() -> None:
    assert ecr_repository_arn(REPO_URL) == REPO_ARN
    assert ecr_repository_arn(f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app", "aws-cn") == (
        f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/team/app"
    )
    with pytest.raises(ValueError, match="allowed: an ECR repository URL"):
        ecr_repository_arn("docker.io/library/python")


def test_service_arn_is_cluster_qualified() -> None:
    facts = AccountFacts(account_id=ACCOUNT, region=TEST_REGION, partition="aws", dns_suffix="amazonaws.com")
    assert ecs_service_arn(facts, "shop-cluster", "shop-service") == SERVICE_ARN
