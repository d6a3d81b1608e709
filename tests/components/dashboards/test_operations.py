"""The operations dashboard, called with plain strings: every watched resource is drawn, exactly as named."""

from __future__ import annotations

from typing import Any

import pytest
from awsblocks.observability.alarms import AlarmThresholds
from awsblocks.observability.layout import layout_problems
from awsblocks.observability.operations import operations_dashboard
from awsblocks.observability.refs import (
    Watched,
    WatchedFunction,
    WatchedLoadBalancer,
    WatchedQueue,
    WatchedService,
    WatchedTable,
)

from tests.components.dashboards.bodies import metric_refs

REGION = "eu-west-1"
WATCHED = Watched(
    queues=(
        WatchedQueue("orders", "orders-q", "orders-dlq"),
        WatchedQueue("refunds", "refunds-q"),
        WatchedQueue("nightly", "nightly-dlq", is_dead_letter=True),
    ),
    functions=(WatchedFunction("shipper", "shipper-fn"), WatchedFunction("billing", "billing-fn")),
    tables=(WatchedTable("orders", "orders-table"),),
    load_balancers=(WatchedLoadBalancer("web", "app/web/abc", "targetgroup/web/def"),),
    services=(WatchedService("web", "web-cluster", "web-service"),),
)


def titled(body: dict[str, Any], title: str) -> dict[str, Any]:
    [widget] = [w for w in body["widgets"] if w["properties"]["title"] == title]
    return widget


def test_layout_is_valid_and_every_widget_is_in_the_region() -> None:
    body = operations_dashboard(WATCHED, REGION)
    assert layout_problems(body) == []
    assert {w["properties"]["region"] for w in body["widgets"]} == {REGION}


def test_queues_show_visible_age_and_dead_letter_depth() -> None:
    body = operations_dashboard(WATCHED, REGION)
    refs = metric_refs(body)
    visible = {r.dimensions["QueueName"] for r in refs if r.widget == "Queues: visible messages"}
    age = {r.dimensions["QueueName"] for r in refs if r.widget == "Queues: age of oldest message"}
    dlq = {r.dimensions["QueueName"] for r in refs if r.widget == "Dead-letter queues: depth"}
    assert visible == age == {"orders-q", "refunds-q"}
    assert dlq == {"orders-dlq", "nightly-dlq"}


def test_functions_show_the_five_lambda_metrics_per_function() -> None:
    refs = [r for r in metric_refs(operations_dashboard(WATCHED, REGION)) if r.namespace == "AWS/Lambda"]
    by_metric: dict[str, set[str]] = {}
    for ref in refs:
        by_metric.setdefault(ref.metric, set()).add(ref.dimensions["FunctionName"])
    assert by_metric == {
        m: {"shipper-fn", "billing-fn"}
        for m in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions")
    }
    duration = titled(operations_dashboard(WATCHED, REGION), "Functions: duration p99")
    assert all(line[-1]["stat"] == "p99" for line in duration["properties"]["metrics"])


def test_load_balancer_and_service_metrics_use_suffixes_and_names() -> None:
    refs = metric_refs(operations_dashboard(WATCHED, REGION))
    alb = {
        (r.metric, tuple(sorted(r.dimensions.items()))) for r in refs if r.namespace == "AWS/ApplicationELB"
    }
    assert ("RequestCount", (("LoadBalancer", "app/web/abc"),)) in alb
    assert ("HTTPCode_Target_5XX_Count", (("LoadBalancer", "app/web/abc"),)) in alb
    tg = (("LoadBalancer", "app/web/abc"), ("TargetGroup", "targetgroup/web/def"))
    assert {("HealthyHostCount", tg), ("UnHealthyHostCount", tg), ("TargetResponseTime", tg)} <= alb
    stats = [
        line[-1]["stat"]
        for line in titled(operations_dashboard(WATCHED, REGION), "web: target response time")["properties"][
            "metrics"
        ]
    ]
    assert stats == ["p50", "p99"]
    ecs = {(r.namespace, r.metric) for r in refs if r.dimensions.get("ServiceName") == "web-service"}
    assert ecs == {
        ("AWS/ECS", "CPUUtilization"),
        ("AWS/ECS", "MemoryUtilization"),
        ("ECS/ContainerInsights", "RunningTaskCount"),
        ("ECS/ContainerInsights", "DesiredTaskCount"),
        ("ECS/ContainerInsights", "PendingTaskCount"),
    }
    assert all(r.dimensions["ClusterName"] == "web-cluster" for r in refs if "ServiceName" in r.dimensions)


def test_tables_show_capacity_and_per_operation_throttles_and_errors_by_search() -> None:
    refs = [r for r in metric_refs(operations_dashboard(WATCHED, REGION)) if r.namespace == "AWS/DynamoDB"]
    explicit = {r.metric for r in refs if not r.searched}
    searched = {r.metric for r in refs if r.searched}
    assert explicit == {"ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"}
    assert searched == {"ThrottledRequests", "SystemErrors"}
    assert {r.values_of("TableName") for r in refs} == {("orders-table",)}


def test_alarm_thresholds_are_drawn_when_given() -> None:
    plain = titled(operations_dashboard(WATCHED, REGION), "Queues: age of oldest message")
    assert "annotations" not in plain["properties"]
    drawn = titled(
        operations_dashboard(WATCHED, REGION, AlarmThresholds(queue_age_seconds=600)),
        "Queues: age of oldest message",
    )
    assert drawn["properties"]["annotations"]["horizontal"][0]["value"] == 600


def test_sections_without_resources_are_left_out() -> None:
    body = operations_dashboard(Watched(functions=(WatchedFunction("only", "only-fn"),)), REGION)
    assert {w["properties"]["title"].split(":")[0] for w in body["widgets"]} == {"Functions"}
    with pytest.raises(ValueError, match="nothing to watch"):
        operations_dashboard(Watched(), REGION)


def test_labels_are_checked_and_unique() -> None:
    with pytest.raises(ValueError, match="queue label 'bad label'"):
        WatchedQueue("bad label", "q")
    with pytest.raises(ValueError, match="function labels repeat: a"):
        Watched(functions=(WatchedFunction("a", "x"), WatchedFunction("a", "y")))
    with pytest.raises(ValueError, match="no dead-letter queue of its own"):
        WatchedQueue("d", "d-q", "d-dlq", is_dead_letter=True)


def test_values_round_trip_in_a_fixed_order() -> None:
    values = WATCHED.values()
    assert values[:4] == ["orders-q", "orders-dlq", "refunds-q", "nightly-dlq"]
    rebuilt = WATCHED.with_values([v.upper() for v in values])
    assert rebuilt.queues[0].dead_letter_name == "ORDERS-DLQ"
    assert rebuilt.load_balancers[0].target_group_arn_suffix == "TARGETGROUP/WEB/DEF"
    assert rebuilt.queues[2].is_dead_letter
    with pytest.raises(ValueError, match="values for"):
        WATCHED.with_values(values[:-1])
