"""Cost arithmetic per line item, against figures computed by hand from the price table."""

from __future__ import annotations

import pytest

from toolchain.report import costs
from toolchain.report.prices import available_regions, load_prices

PRICES = load_prices("ap-northeast-2")


def usd(key: str) -> float:
    return PRICES[key].usd


def test_nat_gateway_hours_single_and_per_az() -> None:
    # 1 x 730 h x $0.059 = $43.07; per AZ on 3 AZs: 3 x 730 x 0.059 = $129.21
    assert costs.round_money(costs.monthly_cost(costs.always_on_hours(1), usd("nat_gateway_hour"))) == 43.07
    assert costs.round_money(costs.monthly_cost(costs.always_on_hours(3), usd("nat_gateway_hour"))) == 129.21


def test_public_ipv4_for_a_nat_eip_and_an_alb_in_two_azs() -> None:
    # (1 EIP + 2 ALB addresses) x 730 h x $0.005 = $10.95
    assert costs.round_money(costs.monthly_cost(costs.always_on_hours(3), usd("public_ipv4_hour"))) == 10.95


def test_alb_hours_and_lcus() -> None:
    assert costs.round_money(costs.monthly_cost(costs.always_on_hours(1), usd("alb_hour"))) == 16.43
    # 1M requests/month: new connections dominate: 1e6 / (3600 s x 25 per LCU) = 11.11 LCU-hours
    lcus = costs.alb_lcus(1_000_000, kb_per_request=4)
    assert lcus == pytest.approx(11.1111, rel=1e-4)
    assert costs.round_money(costs.monthly_cost(lcus, usd("alb_lcu_hour"))) == 0.09
    # Big responses make processed bytes dominate: 1M x 10 MB = 10,000 GB / 730 h = 13.7 LCU, x 730 h
    assert costs.alb_lcus(1_000_000, kb_per_request=10_000) == pytest.approx(10_000, rel=1e-9)
    assert costs.alb_lcus(0, 4) == 0


def test_fargate_vcpu_and_gb_hours() -> None:
    vcpu_h, gb_h = costs.fargate_hours(256, 512, tasks=1)
    assert (vcpu_h, gb_h) == (182.5, 365.0)
    # 182.5 x $0.04656 = $8.4972; 365 x $0.00511 = $1.86515
    assert costs.round_money(costs.monthly_cost(vcpu_h, usd("fargate_vcpu_hour"))) == 8.50
    assert costs.round_money(costs.monthly_cost(gb_h, usd("fargate_gb_hour"))) == 1.87
    vcpu_h, gb_h = costs.fargate_hours(1024, 2048, tasks=2)
    assert (vcpu_h, gb_h) == (1460.0, 2920.0)


def test_capacity_provider_split_places_base_then_weights() -> None:
    assert costs.split_capacity(2, []) == {"FARGATE": 2.0}
    assert costs.split_capacity(3, [("FARGATE", 0, 1), ("FARGATE_SPOT", 1, 0)]) == {
        "FARGATE": 1.0,
        "FARGATE_SPOT": 2.0,
    }
    assert costs.split_capacity(4, [("FARGATE", 1, 0), ("FARGATE_SPOT", 3, 0)]) == {
        "FARGATE": 1.0,
        "FARGATE_SPOT": 3.0,
    }


def test_kms_dashboards_and_alarms_with_free_tiers() -> None:
    assert costs.monthly_cost(5, usd("kms_key_month")) == 5.0
    dashboards = PRICES["cloudwatch_dashboard_month"]
    assert costs.monthly_cost(3, dashboards.usd, dashboards.free) == 0.0
    assert costs.monthly_cost(4, dashboards.usd, dashboards.free) == 3.0
    alarms = PRICES["cloudwatch_alarm_metric_month"]
    assert costs.round_money(costs.monthly_cost(25, alarms.usd, alarms.free)) == 1.50
    assert costs.monthly_cost(10, alarms.usd, alarms.free) == 0.0


def test_log_ingestion_interface_endpoints_and_waf() -> None:
    logs = PRICES["cloudwatch_logs_ingest_gb"]
    # 10 GB, 5 free: 5 x $0.76 = $3.80
    assert costs.round_money(costs.monthly_cost(10, logs.usd, logs.free)) == 3.80
    # 1M requests x 600 bytes = 0.6 GB
    assert costs.gigabytes(1_000_000, 600) == pytest.approx(0.6)
    # 3 endpoints x 3 AZs x 730 h x $0.013 = $85.41
    assert (
        costs.round_money(costs.monthly_cost(costs.always_on_hours(9), usd("interface_endpoint_az_hour")))
        == 85.41
    )
    # 1 web ACL + 4 rules + 10M requests: $5 + $4 + $6
    waf = (
        costs.monthly_cost(1, usd("waf_web_acl_month"))
        + costs.monthly_cost(4, usd("waf_rule_month"))
        + costs.monthly_cost(costs.per_million(10_000_000), usd("waf_requests_million"))
    )
    assert costs.round_money(waf) == 15.00


def test_dynamodb_on_demand_requests_and_storage() -> None:
    assert (
        costs.round_money(costs.monthly_cost(costs.per_million(1_000_000), usd("dynamodb_write_million")))
        == 0.68
    )
    assert (
        costs.round_money(costs.monthly_cost(costs.per_million(10_000_000), usd("dynamodb_read_million")))
        == 1.36
    )
    storage = PRICES["dynamodb_storage_gb_month"]
    assert costs.monthly_cost(20, storage.usd, storage.free) == 0.0
    assert costs.round_money(costs.monthly_cost(35, storage.usd, storage.free)) == 2.71


def test_sqs_idle_polling_and_sns_publishes() -> None:
    # 5 long polls of 20 s each per mapping: 5 x 3/min x 60 x 730 = 657,000 requests
    assert costs.sqs_idle_polls(1) == 657_000
    sqs = PRICES["sqs_requests_million"]
    # 8 mappings: 5.256M requests, 1M free: 4.256 x $0.40 = $1.70
    assert (
        costs.round_money(costs.monthly_cost(costs.per_million(costs.sqs_idle_polls(8)), sqs.usd, sqs.free))
        == 1.70
    )
    sns = PRICES["sns_publishes_million"]
    assert costs.monthly_cost(costs.per_million(30_000), sns.usd, sns.free) == 0.0
    assert costs.round_money(costs.monthly_cost(costs.per_million(3_000_000), sns.usd, sns.free)) == 1.00


def test_lambda_requests_and_gb_seconds() -> None:
    assert costs.lambda_gb_seconds(1_000_000, 512, 200) == pytest.approx(100_000)
    compute = PRICES["lambda_gb_second"]
    assert costs.monthly_cost(100_000, compute.usd, compute.free) == 0.0
    # 3M x 1 GB x 0.2 s = 600,000 GB-s; 200,000 above the free tier x $0.0000166667 = $3.33
    gbs = costs.lambda_gb_seconds(3_000_000, 1024, 200)
    assert costs.round_money(costs.monthly_cost(gbs, compute.usd, compute.free)) == 3.33
    requests = PRICES["lambda_requests_million"]
    assert (
        costs.round_money(costs.monthly_cost(costs.per_million(3_000_000), requests.usd, requests.free))
        == 0.40
    )


def test_codepipeline_and_codebuild_minutes() -> None:
    pipeline = PRICES["codepipeline_v2_action_minute"]
    # 20 deploys x 4 actions x 2 min = 160 min, 100 free: 60 x $0.002 = $0.12
    assert costs.round_money(costs.monthly_cost(20 * 4 * 2, pipeline.usd, pipeline.free)) == 0.12
    build = PRICES["codebuild_small_minute"]
    assert costs.round_money(costs.monthly_cost(20 * 8, build.usd, build.free)) == 0.30
    assert costs.monthly_cost(1, usd("codepipeline_v1_pipeline_month")) == 1.0


def test_secrets_ssm_s3_and_ecr() -> None:
    assert costs.round_money(costs.monthly_cost(3, usd("secretsmanager_secret_month"))) == 1.20
    assert costs.round_money(costs.monthly_cost(2, usd("ssm_advanced_parameter_month"))) == 0.10
    assert costs.round_money(costs.monthly_cost(40, usd("s3_standard_gb_month"))) == 1.00
    assert costs.round_money(costs.monthly_cost(0.5, usd("ecr_storage_gb_month"))) == 0.05


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("rate(5 minutes)", 8760),
        ("rate(1 hour)", 730),
        ("rate(1 day)", 30.4167),
        ("cron(0 * * * ? *)", 730),
        ("cron(0/15 * * * ? *)", 2920),
        ("cron(30 2 * * ? *)", 30.4167),
        ("cron(0 9 ? * MON-FRI *)", 21.7262),
    ],
)
def test_schedule_runs_per_month(expression: str, runs: float) -> None:
    assert costs.schedule_runs_per_month(expression) == pytest.approx(runs, rel=1e-4)


def test_schedule_expression_that_cannot_be_read_is_an_error() -> None:
    with pytest.raises(ValueError, match="unrecognised schedule expression"):
        costs.schedule_runs_per_month("every tuesday")


def test_negative_quantities_are_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        costs.monthly_cost(-1, 0.5)


def test_price_table_is_dated_and_every_price_names_its_source() -> None:
    assert "ap-northeast-2" in available_regions()
    assert PRICES.compiled == "2026-11-20"
    for price in PRICES.prices.values():
        assert price.source.startswith("https://aws.amazon.com/"), price.key
        assert price.unit
    assert "nat_gateway_hour" in PRICES.unconfirmed


def test_unknown_region_names_the_tables_that_exist() -> None:
    with pytest.raises(FileNotFoundError, match="ap-northeast-2"):
        load_prices("xx-nowhere-1")
