"""The API layer of the stack: environment, grants, sizing, WAF and MFA per stack, config checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from awsblocks.testing import DeclaredResource, Synthesis
from awsblocks.web.build_context import context_tag

from app.access import ACCESS
from app.settings import _ENV_NAME_TO_FIELD
from infra.api_service import API_CONTAINER_PORT, API_USER, api_problems
from infra.config import ConfigError, parse
from lambdas.shared import contract
from tests.conftest import SynthFn
from toolchain.project import read_stack_config, synthesize

PREBUILT = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/api:commit-0123abc"
_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Synthesis] = {}


def api_stack(stack: str, **overrides: Any) -> Synthesis:
    patched = {"crowdfunding:apiImageUri": PREBUILT, **overrides}
    key = (stack, tuple(sorted(patched.items())))
    if key not in _cache:
        config = read_stack_config(stack)
        config.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in patched.items()})
        _cache[key] = synthesize(stack, config=config)
    return _cache[key]


def web_service(s: Synthesis) -> DeclaredResource:
    (service,) = s.of_type("awsblocks:index:WebService")
    return service


def container(s: Synthesis) -> dict[str, Any]:
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (definition,) = json.loads(task.inputs["containerDefinitions"])
    return dict(definition)


def test_the_api_gets_exactly_the_environment_app_settings_reads() -> None:
    s = api_stack("dev")
    env = {e["name"]: e["value"] for e in container(s)["environment"]}
    read_by_app = set(_ENV_NAME_TO_FIELD) - {"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}
    assert set(env) == read_by_app
    tables = {r.name: r.outputs for r in s.of_type("awsblocks:index:Table")}
    for spec in (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE, contract.IDEMPOTENCY_TABLE):
        assert env[spec.env_var] == tables[spec.logical_name]["name"]
    assert env["AWS_REGION"] == "ap-northeast-2"
    assert re.match(r"^arn:aws:sns:ap-northeast-2:\d{12}:", env[contract.ENV_PAYMENTS_TOPIC_ARN])
    users = next(r for r in s.resources if r.type == "awsblocks:index:UserPool").outputs
    assert env[contract.ENV_COGNITO_USER_POOL_ID] == users["user_pool_id"]
    assert env[contract.ENV_COGNITO_APP_CLIENT_ID] == users["client_id"]
    assert env["COGNITO_ISSUER"] == users["issuer"] and env["COGNITO_JWKS_URL"] == users["jwks_url"]
    assert container(s)["secrets"] == []


def task_role_statements(s: Synthesis) -> dict[str, dict[str, Any]]:
    task_role = s.named("api-task-role")
    (policy,) = [r for r in s.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == task_role.id]
    return {st["Sid"]: st for st in json.loads(policy.inputs["policy"])["Statement"]}


def test_the_task_role_may_do_exactly_what_app_access_declares() -> None:
    """Issue 14 item 3: the API could Scan and Delete payments. Its policy now lists, per table,
    index and topic, exactly the actions app/access.py declares (the calls app/ makes)."""
    s = api_stack("dev")
    statements = task_role_statements(s)
    tables = {r.name: r.outputs for r in s.of_type("awsblocks:index:Table")}
    env = {e["name"]: e["value"] for e in container(s)["environment"]}
    granted: dict[str, set[str]] = {}
    for statement in statements.values():
        if statement["Sid"] == "KMSUseTablesAndTopic":
            continue
        for resource in statement["Resource"]:
            granted.setdefault(resource, set()).update(statement["Action"])
    expected: dict[str, set[str]] = {}
    for spec in (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE, contract.IDEMPOTENCY_TABLE):
        arn = tables[spec.logical_name]["arn"]
        for action in ACCESS[spec.env_var]:
            name, _, index = action.partition("@")
            expected.setdefault(f"{arn}/index/{index}" if index else arn, set()).add(name)
    expected[env[contract.ENV_PAYMENTS_TOPIC_ARN]] = set(ACCESS[contract.ENV_PAYMENTS_TOPIC_ARN])
    assert granted == expected
    payments_arn = tables[contract.PAYMENTS_TABLE.logical_name]["arn"]
    assert granted[payments_arn] == {"dynamodb:GetItem", "dynamodb:PutItem"}  # no Scan, no DeleteItem
    assert not [r for r in granted if r.startswith(payments_arn + "/index/")]
    assert statements["KMSUseTablesAndTopic"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert all(r.startswith("arn:aws:kms:") for r in statements["KMSUseTablesAndTopic"]["Resource"])
    actions = [a for st in statements.values() for a in st["Action"]]
    assert not [a for a in actions if "*" in a]


def test_an_access_entry_the_api_layer_cannot_grant_is_named() -> None:
    from infra.api_service import ApiBackends, api_grants

    backends = ApiBackends(None, None, None, None)  # type: ignore[arg-type]  # never reached
    with pytest.raises(ValueError, match=r"ACCESS names \['TRANSACTIONS_TABLE'\].*allowed: "):
        api_grants(backends, {"TRANSACTIONS_TABLE": ("dynamodb:GetItem",)})


def test_the_api_gets_its_quotas_and_documents_setting_from_the_stack() -> None:
    dev = {e["name"]: e["value"] for e in container(api_stack("dev"))["environment"]}
    prod = {e["name"]: e["value"] for e in container(api_stack("prod"))["environment"]}
    assert (dev["API_DOCS"], prod["API_DOCS"]) == ("true", "false")
    for env in (dev, prod):
        assert (
            env["QUOTA_PAYMENTS_PER_MINUTE"],
            env["QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY"],
            env["QUOTA_CAMPAIGNS_PER_DAY"],
        ) == ("10", "20", "10")
    tuned = container(
        api_stack("dev", **{"crowdfunding:quotaPaymentsPerMinute": 3, "crowdfunding:apiDocs": False})
    )
    env = {e["name"]: e["value"] for e in tuned["environment"]}
    assert (env["QUOTA_PAYMENTS_PER_MINUTE"], env["API_DOCS"]) == ("3", "false")


def test_the_apps_defaults_equal_the_stack_configs() -> None:
    """A task started without the variables (by hand) behaves as a stack with default config."""
    from app import settings as app_settings
    from infra.config import KEYS_BY_NAME

    for key, default in (
        ("quotaPaymentsPerMinute", app_settings.DEFAULT_QUOTA_PAYMENTS_PER_MINUTE),
        ("quotaPaymentsPerCampaignPerDay", app_settings.DEFAULT_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY),
        ("quotaCampaignsPerDay", app_settings.DEFAULT_QUOTA_CAMPAIGNS_PER_DAY),
    ):
        assert KEYS_BY_NAME[f"crowdfunding:{key}"].default == default, key


def test_dev_runs_one_to_two_small_tasks_without_waf_and_with_optional_mfa() -> None:
    s = api_stack("dev")
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("256", "512")
    (target,) = s.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (1, 2)
    assert [r for r in s.resources if r.type.startswith("aws:wafv2/")] == []
    (pool,) = s.of_type("aws:cognito/userPool:UserPool")
    assert pool.inputs["mfaConfiguration"] == "OPTIONAL"
    assert s.named("api-alb").inputs["enableDeletionProtection"] is False


def test_prod_runs_at_least_two_tasks_across_its_azs_behind_a_waf_with_mfa_on() -> None:
    s = api_stack("prod")
    (service,) = s.of_type("aws:ecs/service:Service")
    assert service.inputs["desiredCount"] >= 2
    private = [r.id for r in s.of_type("aws:ec2/subnet:Subnet") if "private" in r.name]
    assert sorted(service.inputs["networkConfiguration"]["subnets"]) == sorted(private) and len(private) == 3
    (target,) = s.of_type("aws:appautoscaling/target:Target")
    assert target.inputs["minCapacity"] >= 2
    (association,) = s.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs["resourceArn"] == web_service(s).outputs["alb_arn"]
    (pool,) = s.of_type("aws:cognito/userPool:UserPool")
    assert pool.inputs["mfaConfiguration"] == "ON" and pool.inputs["deletionProtection"] == "ACTIVE"
    assert s.named("api-alb").inputs["enableDeletionProtection"] is True
    (client,) = s.of_type("aws:cognito/userPoolClient:UserPoolClient")
    assert "ALLOW_USER_PASSWORD_AUTH" not in client.inputs["explicitAuthFlows"]


def test_service_listens_on_the_app_port_and_checks_healthz() -> None:
    s = api_stack("dev")
    (tg,) = s.of_type("aws:lb/targetGroup:TargetGroup")
    assert tg.inputs["port"] == API_CONTAINER_PORT and tg.inputs["healthCheck"]["path"] == "/healthz"
    assert container(s)["portMappings"] == [{"containerPort": API_CONTAINER_PORT, "protocol": "tcp"}]
    assert container(s)["user"] == API_USER
    dockerfile = (Path(__file__).resolve().parents[2] / "app" / "Dockerfile").read_text()
    assert f"EXPOSE {API_CONTAINER_PORT}" in dockerfile and f"USER {API_USER}" in dockerfile


def test_the_committed_stacks_build_the_app_image_from_the_repository_root(synth: SynthFn) -> None:
    s = synth("dev")
    (image,) = s.of_type("docker:index/image:Image")
    root = Path(__file__).resolve().parents[2]
    tag = context_tag(root, root / "app" / "Dockerfile", platform="linux/amd64")
    assert image.inputs["imageName"].endswith(f":{tag}")
    assert Path(image.inputs["build"]["context"]).resolve() == root
    assert Path(image.inputs["build"]["dockerfile"]).resolve() == root / "app" / "Dockerfile"
    assert container(s)["image"] == image.state["repoDigest"]  # by digest: tests/infra/test_image_digest.py


def test_a_prebuilt_image_is_deployed_as_given_and_exported() -> None:
    s = api_stack("dev")
    assert s.of_type("docker:index/image:Image") == []
    assert container(s)["image"] == PREBUILT
    assert s.stack_outputs["apiImage"] == PREBUILT
    assert s.stack_outputs["apiUrl"].startswith("http://")
    assert s.stack_outputs["userPoolIssuer"].startswith("https://cognito-idp.ap-northeast-2.amazonaws.com/")


def test_a_certificate_turns_on_https_with_the_redirect() -> None:
    cert = "arn:aws:acm:ap-northeast-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    s = api_stack("dev", **{"crowdfunding:certificateArn": cert})
    ports = {r.inputs["port"]: r.inputs for r in s.of_type("aws:lb/listener:Listener")}
    assert ports[443]["certificateArn"] == cert
    assert ports[80]["defaultActions"][0]["type"] == "redirect"
    assert s.stack_outputs["apiUrl"].startswith("https://")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crowdfunding:apiMemoryMb": 4096}, r"apiMemoryMb: 4096 is not allowed with apiCpu 256"),
        (
            {"crowdfunding:apiDesiredCount": 3},
            r"apiDesiredCount: 3 is outside apiMinCount 1 \.\. apiMaxCount 2",
        ),
    ],
)
def test_config_combinations_fail_before_anything_is_declared(
    overrides: dict[str, Any], message: str
) -> None:
    raw = read_stack_config("dev")
    raw.update({k: str(v) for k, v in overrides.items()})
    assert any(re.search(message, p) for p in api_problems(parse("dev", raw)))


def test_prod_refuses_a_single_task_minimum() -> None:
    raw = read_stack_config("prod") | {"crowdfunding:apiMinCount": "1", "crowdfunding:apiDesiredCount": "2"}
    assert api_problems(parse("prod", raw)) == [
        "crowdfunding:apiMinCount: 1 on a prod stack; allowed: 2 or more "
        "(the API must survive the loss of a task or an AZ)"
    ]
    assert api_problems(parse("prod", read_stack_config("prod"))) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("crowdfunding:certificateArn", "arn:aws:iam::123456789012:server-certificate/api"),
        ("crowdfunding:userPoolMfa", "SMS"),
        ("crowdfunding:apiCpu", "300"),
        ("crowdfunding:apiImageUri", "not an image"),
    ],
)
def test_bad_api_keys_are_named(key: str, value: str) -> None:
    raw = read_stack_config("dev") | {key: value}
    with pytest.raises(ConfigError, match=re.escape(f"{key}: {value!r} is not allowed")):
        parse("dev", raw)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_policy_passes_for_the_api_layer(stack: str) -> None:
    from policies.adapters import evaluate_synthesis
    from policies.engine import failures

    s = api_stack(stack)
    findings = evaluate_synthesis(s)
    api_resources = {r.name for r in s.descendants(web_service(s))}
    assert {f.resource_name for f in findings if f.status == "passed"} & api_resources, (
        "rules looked at the API"
    )
    assert [str(f) for f in failures(findings)] == []
