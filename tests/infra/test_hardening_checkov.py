"""Issue 18 item 8: what the stacks adopted from checkov, and what the report shows as waived."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse
from infra.payment_chain import callers_of, reserved_concurrency
from lambdas.specs import catalog
from tests.conftest import SynthFn
from toolchain.report import build_report
from toolchain.report.estimate import Load
from toolchain.report.render import render_markdown

MONEY_PATH = (
    "payment_processor",
    "payment_retry",
    "funding_update",
    "transaction_check",
    "ledger_recorder",
    "campaign_closer",
    "reconciler",
    "pg_gateway",
)


def _function(synth: SynthFn, stack: str, module: str):  # type: ignore[no-untyped-def]
    return synth(stack).named(f"{module.replace('_', '-')}-function")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_money_path_reserves_at_least_what_its_mappings_allow(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    mappings = {
        m.inputs["functionName"]: m for m in s.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    }
    for module in MONEY_PATH:
        function = _function(synth, stack, module)
        reserved = function.inputs.get("reservedConcurrentExecutions")
        assert reserved and reserved >= 1, module
        mapping = mappings.get(function.state.get("arn"))
        if mapping is not None:
            assert reserved >= mapping.inputs["scalingConfig"]["maximumConcurrency"], module


def test_the_gateway_reserves_what_its_callers_can_hold_at_once() -> None:
    callers = ("payment_processor", "payment_retry", "transaction_check", "campaign_closer", "reconciler")
    assert tuple(callers_of("pg_gateway")) == callers
    assert reserved_concurrency("pg_gateway") == sum(
        catalog.spec_of(c).sizing.reserved_concurrency or 0 for c in callers
    )


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_every_function_traces_and_encrypts_its_environment(synth: SynthFn, stack: str) -> None:
    for function in synth(stack).of_type("aws:lambda/function:Function"):
        assert function.inputs["tracingConfig"] == {"mode": "Active"}, function.name
        assert function.inputs.get("kmsKeyArn"), function.name


def test_prod_refuses_log_retention_under_a_year() -> None:
    raw = {
        "aws:region": "ap-northeast-2",
        "crowdfunding:environment": "prod",
        "crowdfunding:natStrategy": "per_az",
        "crowdfunding:deletionProtection": "true",
        "crowdfunding:logRetentionDays": "90",
        "crowdfunding:flowLogRetentionDays": "180",
    }
    with pytest.raises(ConfigError) as caught:
        parse("prod", raw)
    text = str(caught.value)
    assert "crowdfunding:logRetentionDays: 90 is not allowed on a prod stack; allowed: 365 or more" in text
    assert "crowdfunding:flowLogRetentionDays: 180 is not allowed on a prod stack" in text


def test_prod_keeps_every_log_group_a_year(synth: SynthFn) -> None:
    groups = synth("prod").of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups and all(g.inputs["retentionInDays"] >= 365 for g in groups)


def test_the_dev_report_shows_each_waiver_with_its_reason(synth: SynthFn) -> None:
    markdown = render_markdown(build_report(synth("dev"), Load(1_000_000, 10_000)))
    for rule_id, reason in (
        ("lambda-in-vpc", "the functions call only AWS APIs"),
        ("logs-retention-one-year", "a development or local stack holds no customer's payment records"),
        ("alb-target-group-tls", "TLS ends at the load balancer"),
    ):
        assert f"`{rule_id}`" in markdown and reason in markdown, rule_id
