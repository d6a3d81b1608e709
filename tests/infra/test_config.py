"""Stack config: every bad value fails before any resource exists, naming key, value and rule."""

from __future__ import annotations

import pulumi
import pytest

from infra.config import KEYS, ConfigError, parse
from infra.synth import OfflineMocks, RecordingMonitor, read_stack_config, stack_names, synthesize

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
