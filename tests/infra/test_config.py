"""Stack config: every bad value fails before any resource exists, naming key, value and rule."""

from __future__ import annotations

import pulumi
import pytest
from awsblocks.testing import OfflineMocks, RecordingMonitor

from infra.config import KEYS, ConfigError, parse
from toolchain.project import read_stack_config, stack_names, synthesize

GOOD = {
    "aws:region": "ap-northeast-2",
    "crowdfunding:natStrategy": "single",
}


def problems_for(stack: str = "dev", **changes: str | None) -> list[str]:
    raw = {**GOOD}
    for key, value in changes.items():
        name = key if ":" in key else f"crowdfunding:{key}"
        if value is None:
            raw.pop(name, None)
        else:
            raw[name] = value
    with pytest.raises(ConfigError) as caught:
        parse(stack, raw)
    return caught.value.problems


def test_defaults_fill_every_optional_key() -> None:
    cfg = parse("dev", GOOD)
    assert (cfg.environment, cfg.vpc_cidr, cfg.az_count, cfg.nat_strategy) == (
        "dev",
        "10.20.0.0/16",
        2,
        "single",
    )
    assert cfg.interface_endpoints == ()
    assert cfg.deletion_protection is False


def test_every_committed_stack_file_is_valid() -> None:
    for stack in stack_names():
        parse(stack, read_stack_config(stack))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"vpcCidr": "10.0.0.300/16"},
            "crowdfunding:vpcCidr: '10.0.0.300/16' is not allowed; allowed: an IPv4",
        ),
        ({"vpcCidr": "10.0.0.0/8"}, "crowdfunding:vpcCidr: '10.0.0.0/8' is not allowed"),
        ({"vpcCidr": "10.0.0.1/16"}, "crowdfunding:vpcCidr: '10.0.0.1/16' is not allowed"),
        ({"azCount": "0"}, "crowdfunding:azCount: '0' is not allowed; allowed: a whole number from 1 to 6"),
        ({"azCount": "7"}, "crowdfunding:azCount: '7' is not allowed; allowed: a whole number from 1 to 6"),
        ({"azCount": "two"}, "crowdfunding:azCount: 'two' is not valid (expected a whole number)"),
        (
            {"natStrategy": "shared"},
            "crowdfunding:natStrategy: 'shared' is not allowed; allowed: one of none",
        ),
        ({"natStrategy": None}, "crowdfunding:natStrategy: required but not set"),
        ({"aws:region": "seoul"}, "aws:region: 'seoul' is not allowed; allowed: an AWS region name"),
        ({"aws:region": None}, "aws:region: required but not set"),
        ({"flowLogRetentionDays": "10"}, "crowdfunding:flowLogRetentionDays: '10' is not allowed"),
        ({"interfaceEndpoints": "logs"}, "crowdfunding:interfaceEndpoints: 'logs' is not valid"),
        ({"interfaceEndpoints": '["logs", "logs"]'}, "crowdfunding:interfaceEndpoints"),
        (
            {"deletionProtection": "yes"},
            "crowdfunding:deletionProtection: 'yes' is not valid (expected true or false)",
        ),
        ({"natStrateg": "single"}, "crowdfunding:natStrateg: unknown key (a typo?)"),
        (
            {"environment": "staging"},
            "crowdfunding:environment: 'staging' is not allowed; allowed: one of dev",
        ),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(
    changes: dict[str, str | None], expected: str
) -> None:
    found = problems_for(**changes)
    assert any(expected in problem for problem in found), found


def test_prod_without_deletion_protection_is_refused() -> None:
    found = problems_for("prod", deletionProtection="false")
    assert any("deletionProtection: 'false' is not allowed on a prod stack" in p for p in found), found
    found = problems_for("prod")
    assert any("(unset, default false)" in p for p in found), found


def test_unknown_stack_names_must_say_their_environment() -> None:
    found = problems_for("staging")
    assert any("environment: not set and stack name 'staging'" in p for p in found), found
    assert parse("staging", {**GOOD, "crowdfunding:environment": "dev"}).environment == "dev"


def test_all_problems_are_reported_at_once() -> None:
    found = problems_for(azCount="9", natStrategy="cheap", vpcCidr="nope")
    assert len(found) == 3


def test_the_message_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigError, match=r"Pulumi\.dev\.yaml.*\n.*azCount.*\n.*pulumi config set"):
        parse("dev", {**GOOD, "crowdfunding:azCount": "9"})


def test_bad_config_stops_the_program_before_any_resource_is_declared() -> None:
    monitor = RecordingMonitor(OfflineMocks("ap-northeast-2"))
    with pytest.raises(pulumi.RunError, match="crowdfunding:natStrategy: 'cheap' is not allowed"):
        synthesize("dev", overrides={"crowdfunding:natStrategy": "cheap"}, monitor=monitor)
    assert monitor.declared == {}


def test_every_key_documents_its_type_default_and_rule() -> None:
    for key in KEYS:
        assert key.doc and key.allowed and key.kind


def test_api_docs_default_on_except_on_prod() -> None:
    assert parse("dev", GOOD).api_docs is True
    assert parse("local", GOOD).api_docs is True
    prod = {
        **GOOD,
        "crowdfunding:deletionProtection": "true",
        "crowdfunding:certificateArn": "arn:aws:acm:ap-northeast-2:111122223333:certificate/abc-123",
        "crowdfunding:alertEmail": "ops@stand-in.invalid",
    }
    assert parse("prod", prod).api_docs is False
    assert parse("prod", {**prod, "crowdfunding:apiDocs": "true"}).api_docs is True
    assert parse("dev", {**GOOD, "crowdfunding:apiDocs": "false"}).api_docs is False
    assert parse("staging", {**prod, "crowdfunding:environment": "prod"}).api_docs is False


def test_quota_defaults_and_rules() -> None:
    cfg = parse("dev", GOOD)
    assert (
        cfg.quota_payments_per_minute,
        cfg.quota_payments_per_campaign_per_day,
        cfg.quota_campaigns_per_day,
    ) == (
        10,
        20,
        10,
    )
    assert parse("dev", {**GOOD, "crowdfunding:quotaCampaignsPerDay": "0"}).quota_campaigns_per_day == 0
    found = problems_for(quotaPaymentsPerMinute="-1", quotaCampaignsPerDay="many")
    assert any(
        "crowdfunding:quotaPaymentsPerMinute: '-1' is not allowed; allowed: a whole number from 0 (unlimited)"
        in p
        for p in found
    ), found
    assert any("crowdfunding:quotaCampaignsPerDay: 'many' is not valid" in p for p in found), found


def test_the_local_stack_keeps_quotas_generous_for_load_and_fault_runs() -> None:
    """The embedded benchmark sends 500 payments from one backer to one campaign within seconds."""
    local = parse("local", read_stack_config("local"))
    assert local.quota_payments_per_minute >= 10_000
    assert local.quota_payments_per_campaign_per_day >= 10_000
    assert local.quota_campaigns_per_day >= 1_000
    for stack in ("dev", "prod"):
        cfg = parse(stack, read_stack_config(stack))
        assert 0 < cfg.quota_payments_per_minute <= 60 and 0 < cfg.quota_campaigns_per_day <= 100


def test_the_readme_documents_derived_defaults_and_unlimited_quotas() -> None:
    from infra.config import markdown_table

    table = markdown_table()
    assert "| `crowdfunding:apiDocs` | boolean | `true, false when environment is prod` |" in table
    assert table.count("0: unlimited") == 3
