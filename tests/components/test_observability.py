"""Observability component: dashboards from Outputs, one alarm per definition, each notifying the topic."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from awsblocks.messaging.queue import Queue, QueueArgs
from awsblocks.observability.alarms import AlarmThresholds
from awsblocks.observability.business import CustomMetrics, LogPanel, MetricPanel
from awsblocks.observability.layout import layout_problems
from awsblocks.observability.observability import Observability, ObservabilityArgs
from awsblocks.observability.refs import Watched, WatchedFunction, WatchedQueue, WatchedTable
from awsblocks.testing import MOCK_ACCOUNT_ID, Synthesis

from tests.components.dashboards.bodies import log_sources, metric_refs
from tests.conftest import TEST_REGION, SynthFn

ALARM_TOPIC = f"arn:aws:sns:{TEST_REGION}:{MOCK_ACCOUNT_ID}:alerts"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def plain_args(**overrides: Any) -> ObservabilityArgs:
    args = ObservabilityArgs(
        alarm_topic_arn=ALARM_TOPIC,
        dashboard_name_prefix="shop-test",
        watched=Watched(
            queues=(WatchedQueue("orders", "orders-q", "orders-dlq"),),
            functions=(WatchedFunction("shipper", "shipper-fn"),),
            tables=(WatchedTable("orders", "orders-table"),),
        ),
        custom_metrics=CustomMetrics(
            "Shop", "service", (MetricPanel("Orders", ("OrdersPlaced",)),), ("checkout",)
        ),
        log_panels=(LogPanel("Failures", ("/aws/lambda/shipper",), "fields @message"),),
        tags={"team": "shop"},
    )
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def body(s: Synthesis, name: str) -> dict[str, Any]:
    document = json.loads(s.named(name, DASHBOARD).inputs["dashboardBody"])
    assert isinstance(document, dict)
    return document


def test_creates_both_dashboards_named_by_prefix(synth: SynthFn) -> None:
    s = synth(program=lambda: Observability("obs", plain_args()))
    assert sorted(r.inputs["dashboardName"] for r in s.of_type(DASHBOARD)) == [
        "shop-test-business",
        "shop-test-operations",
    ]
    operations = body(s, "obs-operations")
    business = body(s, "obs-business")
    assert layout_problems(operations) == [] and layout_problems(business) == []
    assert {w["properties"]["region"] for w in operations["widgets"]} == {TEST_REGION}
    assert {
        r.dimensions.get("FunctionName") for r in metric_refs(operations) if r.namespace == "AWS/Lambda"
    } == {"shipper-fn"}
    assert log_sources(business) == ["/aws/lambda/shipper"]
    [component] = [r for r in s.resources if r.type == "awsblocks:index:Observability"]
    assert component.name == "obs"


def test_every_alarm_notifies_the_topic_and_is_tagged(synth: SynthFn) -> None:
    s = synth(program=lambda: Observability("obs", plain_args()))
    alarms = s.of_type(ALARM)
    assert sorted(a.name for a in alarms) == [
        "obs-orders-dead-letters",
        "obs-orders-queue-age",
        "obs-orders-table-throttles",
        "obs-shipper-function-errors",
        "obs-shipper-function-throttles",
    ]
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [ALARM_TOPIC] and alarm.inputs["okActions"] == [ALARM_TOPIC]
        assert alarm.inputs["actionsEnabled"] is True
        assert alarm.inputs["tags"]["component"] == "obs" and alarm.inputs["tags"]["team"] == "shop"
        assert alarm.inputs["alarmDescription"]


def test_single_metric_and_math_alarms_are_rendered_for_cloudwatch(synth: SynthFn) -> None:
    s = synth(program=lambda: Observability("obs", plain_args()))
    age = s.named("obs-orders-queue-age", ALARM).inputs
    assert (age["namespace"], age["metricName"], age["dimensions"], age["statistic"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": "orders-q"},
        "Maximum",
    )
    assert age["threshold"] == 900 and age["comparisonOperator"] == "GreaterThanThreshold"
    table = s.named("obs-orders-table-throttles", ALARM).inputs
    assert "metricName" not in table
    queries = {q["id"]: q for q in table["metricQueries"]}
    assert queries["reads"]["metric"]["dimensions"] == {"TableName": "orders-table"}
    assert queries["throttled"]["returnData"] is True and queries["reads"]["returnData"] is False


def test_dimensions_may_be_outputs_of_other_resources(synth: SynthFn) -> None:
    def program() -> None:
        queue = Queue("work", QueueArgs(alarm_topic_arn=ALARM_TOPIC))
        assert queue.dead_letter is not None
        Observability(
            "obs",
            plain_args(
                watched=Watched(
                    queues=(
                        WatchedQueue(
                            "work", queue.name, queue.dead_letter.name, dead_letter_alarm_exists=True
                        ),
                    )
                ),
                custom_metrics=None,
                log_panels=(),
            ),
        )

    s = synth(program=program)
    queue_name = s.named("work-queue", "aws:sqs/queue:Queue").state["name"]
    dlq_name = s.named("work-dlq", "aws:sqs/queue:Queue").state["name"]
    refs = metric_refs(body(s, "obs-operations"))
    assert {r.dimensions["QueueName"] for r in refs} == {queue_name, dlq_name}
    assert s.named("obs-work-queue-age", ALARM).inputs["dimensions"] == {"QueueName": queue_name}
    # The queue's own DLQ alarm is the only one: dead_letter_alarm_exists=True.
    dlq_alarms = [a for a in s.of_type(ALARM) if a.inputs.get("dimensions") == {"QueueName": dlq_name}]
    assert [a.name for a in dlq_alarms] == ["work-dlq-depth"]
    assert [r.name for r in s.of_type(DASHBOARD)] == ["obs-operations"]


def test_thresholds_and_disabled_actions(synth: SynthFn) -> None:
    s = synth(
        program=lambda: Observability(
            "obs",
            plain_args(
                thresholds=AlarmThresholds(queue_age_seconds=60, function_errors=4), alarms_enabled=False
            ),
        )
    )
    assert s.named("obs-orders-queue-age", ALARM).inputs["threshold"] == 60
    assert s.named("obs-shipper-function-errors", ALARM).inputs["threshold"] == 4
    assert all(a.inputs["actionsEnabled"] is False for a in s.of_type(ALARM))
    body_ops = body(s, "obs-operations")
    [age] = [w for w in body_ops["widgets"] if w["properties"]["title"] == "Queues: age of oldest message"]
    assert age["properties"]["annotations"]["horizontal"][0]["value"] == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"watched": Watched()}, "watched=.*at least one"),
        ({"dashboard_name_prefix": "bad name"}, "dashboard_name_prefix='bad name'"),
        (
            {"custom_metrics": CustomMetrics("AWS/Lambda", "service", (MetricPanel("x", ("M",)),))},
            "custom_metrics.namespace='AWS/Lambda'",
        ),
        (
            {"custom_metrics": CustomMetrics("Shop", "service", (MetricPanel("x", ("M",)),), ('a"b',))},
            "emitters has 'a\"b'",
        ),
        ({"log_panels": (LogPanel("Empty", (), "fields @message"),)}, "log panel 'Empty' has no log groups"),
    ],
)
def test_bad_arguments_fail_at_declaration(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Observability("obs", plain_args(**overrides))


def test_pulumi_outputs_are_accepted_as_emitters(synth: SynthFn) -> None:
    emitter = pulumi.Output.from_input("checkout")
    metrics = CustomMetrics("Shop", "service", (MetricPanel("Orders", ("OrdersPlaced",)),), (emitter,))
    s = synth(program=lambda: Observability("obs", plain_args(custom_metrics=metrics)))
    [ref] = metric_refs(body(s, "obs-business"))
    assert ref.values_of("service") == ("checkout",)
