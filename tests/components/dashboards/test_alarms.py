"""The alarm catalogue as data: which alarms each watched resource gets, thresholds, math that adds up."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from awsblocks.observability.alarms import AlarmSpec, AlarmThresholds, MetricStat, alarms_for
from awsblocks.observability.refs import Watched, WatchedFunction, WatchedMetric

from tests.components.dashboards.test_operations import WATCHED


def test_every_watched_resource_gets_its_alarms() -> None:
    specs = alarms_for(WATCHED, AlarmThresholds())
    kinds = Counter((spec.kind, spec.subject) for spec in specs)
    assert kinds == Counter(
        {
            ("queue-age", "orders"): 1,
            ("queue-age", "refunds"): 1,
            ("dead-letter", "orders"): 1,
            ("dead-letter", "nightly"): 1,
            ("function-errors", "shipper"): 1,
            ("function-throttles", "shipper"): 1,
            ("function-errors", "billing"): 1,
            ("function-throttles", "billing"): 1,
            ("table-throttles", "orders"): 1,
            ("alb-5xx-rate", "web"): 1,
            ("task-shortfall", "web"): 1,
        }
    )
    assert len({spec.key for spec in specs}) == len(specs)


def test_existing_dead_letter_alarms_are_not_duplicated() -> None:
    from awsblocks.observability.refs import Watched, WatchedQueue

    watched = Watched(
        queues=(
            WatchedQueue("a", "a-q", "a-dlq", dead_letter_alarm_exists=True),
            WatchedQueue("n", "n-dlq", is_dead_letter=True, dead_letter_alarm_exists=True),
        )
    )
    assert [spec.kind for spec in alarms_for(watched, AlarmThresholds())] == ["queue-age"]


def test_dead_letter_alarm_fires_on_the_first_message() -> None:
    [spec] = [s for s in alarms_for(WATCHED, AlarmThresholds()) if s.key == "nightly-dead-letters"]
    assert spec.metric is not None
    assert (spec.metric.metric_name, dict(spec.metric.dimensions)) == (
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "nightly-dlq"},
    )
    assert (spec.threshold, spec.comparison) == (0, "GreaterThanThreshold")


def test_thresholds_reach_the_alarms() -> None:
    thresholds = AlarmThresholds(
        queue_age_seconds=1800,
        function_errors=3,
        function_throttles=2,
        table_throttles=7,
        alb_5xx_rate_percent=2.5,
        task_shortfall_minutes=10,
    )
    by_kind = {spec.kind: spec for spec in alarms_for(WATCHED, thresholds)}
    assert by_kind["queue-age"].threshold == 1800
    assert by_kind["function-errors"].threshold == 3
    assert by_kind["function-throttles"].threshold == 2
    assert by_kind["table-throttles"].threshold == 7
    assert by_kind["alb-5xx-rate"].threshold == 2.5
    shortfall = by_kind["task-shortfall"]
    assert (shortfall.evaluation_periods, shortfall.datapoints_to_alarm) == (10, 10)


def test_metric_math_refers_only_to_its_own_queries() -> None:
    for spec in alarms_for(WATCHED, AlarmThresholds()):
        if not spec.queries:
            continue
        ids = {q.id for q in spec.queries if q.metric is not None}
        [math] = [q for q in spec.queries if q.return_data]
        assert math.expression is not None
        names = set(re.findall(r"\b([a-z][a-z0-9]*)\b", math.expression))
        assert names <= ids, (spec.key, names - ids)
        assert ids <= names, (spec.key, ids - names)


def test_alb_rate_covers_both_sources_of_5xx_per_request() -> None:
    [spec] = [s for s in alarms_for(WATCHED, AlarmThresholds()) if s.kind == "alb-5xx-rate"]
    metrics = {q.metric.metric_name for q in spec.queries if q.metric is not None}
    assert metrics == {"RequestCount", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"}
    assert all(dict(q.metric.dimensions) == {"LoadBalancer": "app/web/abc"} for q in spec.queries if q.metric)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queue_age_seconds": 10}, "queue_age_seconds=10"),
        ({"function_errors": -1}, "function_errors=-1"),
        ({"alb_5xx_rate_percent": 0}, "alb_5xx_rate_percent=0"),
        ({"task_shortfall_minutes": 0}, "task_shortfall_minutes=0"),
    ],
)
def test_thresholds_refuse_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlarmThresholds(**kwargs)  # type: ignore[arg-type]


def test_an_alarm_is_one_metric_or_one_returning_query() -> None:
    stat = MetricStat("NS", "M", {"d": "v"}, "Sum", 60)
    common = dict(
        key="k",
        kind="x",
        subject="s",
        description="d",
        threshold=0,
        comparison="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )
    with pytest.raises(ValueError, match="exactly one of metric and queries"):
        AlarmSpec(**common, evaluation_periods=1, datapoints_to_alarm=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="datapoints_to_alarm=2"):
        AlarmSpec(**common, evaluation_periods=1, datapoints_to_alarm=2, metric=stat)  # type: ignore[arg-type]


# --- custom metrics alarmed on their own value -------------------------------------------------


def findings_metric(**overrides: object) -> WatchedMetric[str]:
    fields: dict[str, object] = {
        "label": "orders-lost",
        "namespace": "Shop",
        "metric_name": "OrdersLost",
        "dimensions": {"service": "auditor"},
        "description": "The auditor found lost orders: read its log.",
    }
    fields.update(overrides)
    return WatchedMetric(**fields)  # type: ignore[arg-type]


def test_a_custom_metric_alarms_above_its_threshold_in_any_evaluated_period() -> None:
    watched = Watched(metrics=(findings_metric(period=900, evaluation_periods=2),))
    [spec] = alarms_for(watched, AlarmThresholds())
    assert (spec.key, spec.kind, spec.subject) == ("orders-lost-metric", "custom-metric", "orders-lost")
    assert spec.metric == MetricStat("Shop", "OrdersLost", {"service": "auditor"}, "Maximum", 900)
    assert (spec.threshold, spec.comparison, spec.treat_missing_data) == (
        0,
        "GreaterThanThreshold",
        "notBreaching",
    )
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (2, 1)
    assert spec.description == "The auditor found lost orders: read its log."


def test_a_heartbeat_metric_alarms_below_its_threshold_and_when_silent() -> None:
    heartbeat = findings_metric(
        label="audits",
        metric_name="AuditsCompleted",
        threshold=1,
        below=True,
        statistic="Sum",
        period=3600,
        missing_is_breaching=True,
    )
    [spec] = alarms_for(Watched(metrics=(heartbeat,)), AlarmThresholds())
    assert (spec.threshold, spec.comparison, spec.treat_missing_data) == (1, "LessThanThreshold", "breaching")
    assert spec.metric is not None and (spec.metric.stat, spec.metric.period) == ("Sum", 3600)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"label": "no spaces"}, "metric label 'no spaces'"),
        ({"period": 90}, "period=90"),
        ({"period": 30}, "period=30"),
        ({"evaluation_periods": 0}, "evaluation_periods=0"),
        ({"description": ""}, "description must be"),
        ({"metric_name": ""}, "metric_name are required"),
    ],
)
def test_custom_metrics_refuse_nonsense(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        findings_metric(**overrides)
    with pytest.raises(ValueError, match="metric labels repeat: orders-lost"):
        Watched(metrics=(findings_metric(), findings_metric(metric_name="Other")))


def test_custom_metric_dimensions_round_trip_and_are_not_drawn_on_the_operations_dashboard() -> None:
    watched = Watched(
        functions=(WatchedFunction("auditor", "auditor-fn"),),
        metrics=(findings_metric(dimensions={"service": "auditor", "env": "prod"}),),
    )
    assert watched.values() == ["auditor-fn", "prod", "auditor"]  # dimensions by name
    rebuilt = watched.with_values(["FN", "PROD", "AUDITOR"])
    assert dict(rebuilt.metrics[0].dimensions) == {"env": "PROD", "service": "AUDITOR"}
    assert rebuilt.metrics[0].metric_name == "OrdersLost" and rebuilt.metrics[0].period == 900
    from awsblocks.observability.operations import operations_dashboard

    from tests.components.dashboards.bodies import metric_refs

    assert {r.namespace for r in metric_refs(operations_dashboard(watched, "eu-west-1"))} == {"AWS/Lambda"}
    only_metrics = Watched(metrics=(findings_metric(),))
    assert not only_metrics.empty and not only_metrics.drawn
    with pytest.raises(ValueError, match="custom metrics alone are alarmed, not drawn"):
        operations_dashboard(only_metrics, "eu-west-1")
