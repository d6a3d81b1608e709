"""The committed stacks deploy as they are, or refuse with a message that says what to set.

Nothing in them points at someone else's account or an example address; what only the user can
supply (a repository connection, a certificate, an alert address, a sender) is off until set, or
refused on prod (infra/config.py) with the `pulumi config set` command to run.
"""

from __future__ import annotations

import re

import pytest

from infra.config import PROJECT, ConfigError, parse
from lambdas.shared import contract
from tests.conftest import SynthFn
from toolchain.project import REPO_ROOT, read_stack_config, stack_names, stand_ins, synthesize

DOCUMENTATION_ACCOUNT = "123456789012"
EXAMPLE_ADDRESS = re.compile(r"example\.(com|org|net)|example-org|@example", re.IGNORECASE)


def _stack_text(stack: str) -> str:
    return (REPO_ROOT / f"Pulumi.{stack}.yaml").read_text()


@pytest.mark.parametrize("stack", stack_names())
def test_committed_stacks_name_no_documentation_account(stack: str) -> None:
    assert DOCUMENTATION_ACCOUNT not in _stack_text(stack)
    assert not re.search(r"\b\d{12}\b", _stack_text(stack)), "an account id belongs to the user's config"


@pytest.mark.parametrize("stack", stack_names())
def test_committed_stacks_name_no_example_address(stack: str) -> None:
    assert not EXAMPLE_ADDRESS.search(_stack_text(stack))


@pytest.mark.parametrize("stack", stack_names())
def test_delivery_pipeline_is_off_until_the_user_names_a_repository(stack: str) -> None:
    cfg = parse(stack, read_stack_config(stack))
    assert not cfg.pipeline_enabled
    assert (cfg.pipeline_connection_arn, cfg.pipeline_repository) == ("", "")


def test_prod_as_committed_is_refused_naming_the_certificate_and_the_alert_address() -> None:
    raw = read_stack_config("prod", with_stand_ins=False)
    with pytest.raises(ConfigError) as refused:
        parse("prod", raw)
    message = str(refused.value)
    assert f"{PROJECT}:certificateArn: required on a prod stack" in message
    assert f"`pulumi config set {PROJECT}:certificateArn arn:aws:acm:" in message
    assert f"{PROJECT}:alertEmail: required on a prod stack" in message
    assert f"`pulumi config set {PROJECT}:alertEmail <address>`" in message


def test_prod_program_stops_before_declaring_anything_without_them() -> None:
    import pulumi
    from awsblocks.testing import OfflineMocks, RecordingMonitor

    monitor = RecordingMonitor(OfflineMocks("ap-northeast-2"))
    with pytest.raises(pulumi.RunError, match="certificateArn: required on a prod stack"):
        synthesize("prod", config=read_stack_config("prod", with_stand_ins=False), monitor=monitor)
    assert monitor.declared == {}


@pytest.mark.parametrize("missing", ["certificateArn", "alertEmail"])
def test_prod_needs_each_of_them(missing: str) -> None:
    raw = read_stack_config("prod")
    parse("prod", raw)  # with both (the offline stand-ins): accepted
    raw[f"{PROJECT}:{missing}"] = ""
    with pytest.raises(ConfigError, match=f"{missing}: required on a prod stack"):
        parse("prod", raw)


def test_dev_may_serve_plain_http_and_send_alarms_nowhere() -> None:
    raw = read_stack_config("dev")
    assert stand_ins(raw) == {}
    cfg = parse("dev", raw)
    assert (cfg.certificate_arn, cfg.alert_email) == ("", "")


def test_a_certificate_of_another_region_is_refused() -> None:
    raw = read_stack_config("prod")
    raw[f"{PROJECT}:certificateArn"] = "arn:aws:acm:us-east-1:111122223333:certificate/abc-123"
    with pytest.raises(ConfigError, match="is in region us-east-1, not the stack's region ap-northeast-2"):
        parse("prod", raw)


def test_configured_prod_serves_the_api_over_https_with_alarms_to_the_address(synth: SynthFn) -> None:
    s = synth("prod")
    listeners = s.of_type("aws:lb/listener:Listener") + s.of_type("aws:alb/listener:Listener")
    https = [r for r in listeners if r.inputs.get("protocol") == "HTTPS"]
    assert [r.inputs["certificateArn"] for r in https] == [
        stand_ins({"crowdfunding:environment": "prod"})[f"{PROJECT}:certificateArn"]
    ]
    emails = [
        r for r in s.of_type("aws:sns/topicSubscription:TopicSubscription") if r.inputs["protocol"] == "email"
    ]
    assert [r.inputs["endpoint"] for r in emails] == ["ops-alerts@stand-in.invalid"]


def test_without_a_sender_no_identity_is_declared_and_the_notifier_gets_none(synth: SynthFn) -> None:
    """The committed dev stack has no sesSender: no SES identity, no SES_SENDER, no ses:SendEmail
    (the notifier then skips each email and says why: tests/lambdas/test_ledger_notifier.py)."""
    raw = read_stack_config("dev")
    assert not raw.get(f"{PROJECT}:sesSender")
    parse_and_check(raw)
    s = synth("dev", config=raw)
    assert s.of_type("aws:sesv2/emailIdentity:EmailIdentity") == []
    function = next(r for r in s.of_type("aws:lambda/function:Function") if r.name.startswith("notifier"))
    assert contract.ENV_SES_SENDER not in function.inputs["environment"]["variables"]
    policies = " ".join(str(r.inputs) for r in s.of_type("aws:iam/rolePolicy:RolePolicy"))
    assert "ses:SendEmail" not in policies


def parse_and_check(raw: dict[str, str]) -> None:
    """The config checks the program runs before declaring anything."""
    from infra.payment_chain import chain_problems

    cfg = parse("dev", raw)
    if problems := chain_problems(cfg):
        raise ConfigError("dev", problems)
