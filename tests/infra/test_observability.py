"""The stack's dashboards and alarms against the stack itself.

Every metric on a dashboard names a resource the synthesized stack declares (read from the
resources' recorded state, as the provider would return it) or an EMF metric of
`lambdas/shared/contract.py`; every queue, function and table of the stack is on the operations
dashboard and under its alarms, and every alarm notifies ops-alerts. `coverage_problems` is what
fails when someone adds a queue or function without wiring it (the last tests prove it does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from awsblocks.observability.layout import layout_problems
from awsblocks.testing import Synthesis

from dashboards import business as business_dashboard
from infra import observability
from lambdas.shared import books, contract
from lambdas.specs import catalog
from lambdas.specs.model import TopicQueue
from tests.components.dashboards.bodies import MetricRef, log_sources, metric_refs
from tests.conftest import SynthFn
from toolchain.preview import render_tree
from toolchain.project import read_stack_config, stack_names

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"
FUNCTION = "aws:lambda/function:Function"
TABLE = "aws:dynamodb/table:Table"
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
TARGET_GROUP_TYPES = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
LAMBDA_METRICS = {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}


@dataclass
class StackFacts:
    """What the synthesized stack declares, by the names AWS would report."""

    queues: dict[str, str] = field(default_factory=dict)  # physical name -> logical name
    dead_letter_queues: set[str] = field(default_factory=set)
    functions: dict[str, str] = field(default_factory=dict)
    service_names: dict[str, str] = field(default_factory=dict)  # POWERTOOLS_SERVICE_NAME -> function
    function_log_groups: dict[str, str] = field(default_factory=dict)  # function logical -> log group
    tables: dict[str, str] = field(default_factory=dict)
    load_balancers: set[str] = field(default_factory=set)
    target_groups: set[str] = field(default_factory=set)
    clusters: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    log_groups: set[str] = field(default_factory=set)
    alerts_topic_arn: str = ""


def facts_of(s: Synthesis) -> StackFacts:
    facts = StackFacts()
    arn_to_queue: dict[str, str] = {}
    dead_letter_arns: set[str] = set()
    for r in s.cloud_resources:
        state = r.state
        if r.type == QUEUE:
            facts.queues[state["name"]] = r.name
            arn_to_queue[state["arn"]] = state["name"]
            if state.get("redrivePolicy"):
                dead_letter_arns.add(json.loads(state["redrivePolicy"])["deadLetterTargetArn"])
        elif r.type == FUNCTION:
            facts.functions[state["name"]] = r.name
            variables = (state.get("environment") or {}).get("variables") or {}
            facts.service_names[variables["POWERTOOLS_SERVICE_NAME"]] = r.name
            facts.function_log_groups[r.name] = state["loggingConfig"]["logGroup"]
            if (state.get("deadLetterConfig") or {}).get("targetArn"):
                dead_letter_arns.add(state["deadLetterConfig"]["targetArn"])
        elif r.type == "aws:cloudwatch/eventTarget:EventTarget" and (state.get("deadLetterConfig") or {}).get(
            "arn"
        ):
            dead_letter_arns.add(state["deadLetterConfig"]["arn"])
        elif r.type == TABLE:
            facts.tables[state["name"]] = r.name
        elif r.type in LOAD_BALANCER_TYPES:
            facts.load_balancers.add(state["arnSuffix"])
        elif r.type in TARGET_GROUP_TYPES:
            facts.target_groups.add(state["arnSuffix"])
        elif r.type == "aws:ecs/cluster:Cluster":
            facts.clusters.add(state["name"])
        elif r.type == "aws:ecs/service:Service":
            facts.services.add(state["name"])
        elif r.type == "aws:cloudwatch/logGroup:LogGroup":
            facts.log_groups.add(state["name"])
        elif r.type == "aws:sns/topic:Topic" and r.name == f"{contract_ops_alerts()}-topic":
            facts.alerts_topic_arn = state["arn"]
    facts.dead_letter_queues = {arn_to_queue[arn] for arn in dead_letter_arns}
    return facts


def contract_ops_alerts() -> str:
    from infra.payment_chain import OPS_ALERTS

    return OPS_ALERTS


def dashboards(s: Synthesis) -> dict[str, dict[str, Any]]:
    """Dashboard name -> parsed body."""
    return {r.inputs["dashboardName"]: json.loads(r.inputs["dashboardBody"]) for r in s.of_type(DASHBOARD)}


def operations_body(s: Synthesis) -> dict[str, Any]:
    return dashboards(s)[f"crowdfunding-{s.stack}-operations"]


def business_body(s: Synthesis) -> dict[str, Any]:
    return dashboards(s)[f"crowdfunding-{s.stack}-business"]


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric an alarm evaluates."""
    if alarm.get("metricName"):
        return [(alarm["namespace"], alarm["metricName"], dict(alarm.get("dimensions") or {}))]
    return [
        (q["metric"]["namespace"], q["metric"]["metricName"], dict(q["metric"].get("dimensions") or {}))
        for q in alarm.get("metricQueries") or []
        if q.get("metric")
    ]


def watched_by_alarms(s: Synthesis, namespace: str, metric: str, dimension: str) -> list[str]:
    """Values of `dimension` that alarms on this metric watch (one entry per alarm)."""
    return [
        dims[dimension]
        for alarm in s.of_type(ALARM)
        for ns, name, dims in alarm_metrics(alarm.inputs)
        if (ns, name) == (namespace, metric) and dimension in dims
    ]


def coverage_problems(s: Synthesis) -> list[str]:
    """Queues, functions and tables of the stack missing from the operations dashboard or the alarms."""
    facts = facts_of(s)
    refs = metric_refs(operations_body(s))
    problems: list[str] = []

    def on_dashboard(namespace: str, metric: str, dimension: str) -> set[str]:
        return {
            v for r in refs if (r.namespace, r.metric) == (namespace, metric) for v in r.values_of(dimension)
        }

    visible = on_dashboard("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    aged = on_dashboard("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName")
    depth_alarms = watched_by_alarms(s, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    age_alarms = watched_by_alarms(s, "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName")
    for name, logical in facts.queues.items():
        if name not in visible:
            problems.append(f"queue {logical} is not on the operations dashboard")
        if name in facts.dead_letter_queues:
            if depth_alarms.count(name) != 1:
                problems.append(
                    f"dead-letter queue {logical} has {depth_alarms.count(name)} not-empty alarms, not 1"
                )
        else:
            if name not in aged:
                problems.append(f"queue {logical}: no age of oldest message on the operations dashboard")
            if age_alarms.count(name) != 1:
                problems.append(f"queue {logical} has {age_alarms.count(name)} age alarms, not 1")
    for metric in sorted(LAMBDA_METRICS):
        shown = on_dashboard("AWS/Lambda", metric, "FunctionName")
        problems += [
            f"function {lg}: no {metric} on the dashboard"
            for n, lg in facts.functions.items()
            if n not in shown
        ]
    for metric in ("Errors", "Throttles"):
        alarmed = watched_by_alarms(s, "AWS/Lambda", metric, "FunctionName")
        problems += [
            f"function {lg}: no {metric} alarm" for n, lg in facts.functions.items() if alarmed.count(n) != 1
        ]
    tables_shown = on_dashboard("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName")
    throttle_alarms = watched_by_alarms(s, "AWS/DynamoDB", "WriteThrottleEvents", "TableName")
    for name, logical in facts.tables.items():
        if name not in tables_shown:
            problems.append(f"table {logical} is not on the operations dashboard")
        if name not in throttle_alarms:
            problems.append(f"table {logical} has no throttling alarm")
    for suffix in facts.load_balancers:
        if suffix not in watched_by_alarms(
            s, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer"
        ):
            problems.append(f"load balancer {suffix} has no 5xx rate alarm")
    for service in facts.services:
        if service not in watched_by_alarms(s, "ECS/ContainerInsights", "RunningTaskCount", "ServiceName"):
            problems.append(f"ECS service {service} has no running-tasks alarm")
    auditors = [name for name, logical in facts.service_names.items() if logical == AUDITOR_RESOURCE]
    for metric in (contract.Metric.BOOKS_FINDINGS, contract.Metric.AUDITS_COMPLETED):
        alarmed = watched_by_alarms(
            s, contract.METRICS_NAMESPACE, metric.value, contract.METRICS_SERVICE_DIMENSION
        )
        if alarmed != auditors:
            problems.append(
                f"books metric {metric.value}: alarms on services {alarmed}, not the auditor's {auditors}"
            )
    return problems


STACKS = stack_names()
AUDITOR_RESOURCE = "books-auditor-function"
FINDING_METRICS = [metric.value for metric in books.METRIC_OF_KIND.values()]
METRIC_ALARMS = 3
"""The books findings (their total), the auditor's silence, ledger conflicts."""


@pytest.mark.parametrize("stack", STACKS)
def test_every_queue_function_and_table_is_on_the_dashboard_and_alarmed(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    facts = facts_of(s)
    assert len(facts.queues) >= 13 and len(facts.functions) == 10 and len(facts.dead_letter_queues) == 8
    assert coverage_problems(s) == []


@pytest.mark.parametrize("stack", STACKS)
def test_both_dashboards_have_a_valid_layout(synth: SynthFn, stack: str) -> None:
    bodies = dashboards(synth(stack))
    assert sorted(bodies) == [f"crowdfunding-{stack}-business", f"crowdfunding-{stack}-operations"]
    for name, body in bodies.items():
        assert layout_problems(body) == [], name
        assert {w["properties"]["region"] for w in body["widgets"]} == {
            read_stack_config(stack)["aws:region"]
        }


def unknown_operations_refs(facts: StackFacts, refs: list[MetricRef]) -> list[str]:
    known: dict[str, set[str]] = {
        "QueueName": set(facts.queues),
        "FunctionName": set(facts.functions),
        "TableName": set(facts.tables),
        "LoadBalancer": facts.load_balancers,
        "TargetGroup": facts.target_groups,
        "ClusterName": facts.clusters,
        "ServiceName": facts.services,
        contract.METRICS_SERVICE_DIMENSION: set(facts.service_names),
    }
    wrong: list[str] = []
    for ref in refs:
        dimensions = {**{k: (v,) for k, v in ref.dimensions.items()}, **ref.filters}
        if not dimensions:
            wrong.append(f"{ref.widget}: {ref.metric} names no resource")
        for key, values in dimensions.items():
            if key == "Operation":
                continue
            if key not in known:
                wrong.append(f"{ref.widget}: {ref.metric} has unexpected dimension {key}")
            wrong += [
                f"{ref.widget}: {ref.metric} {key}={v} is not in the stack"
                for v in values
                if v not in known[key]
            ]
    return wrong


@pytest.mark.parametrize("stack", STACKS)
def test_every_operations_metric_names_a_resource_of_the_stack(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    refs = metric_refs(operations_body(s))
    assert len(refs) > 80
    assert unknown_operations_refs(facts_of(s), refs) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_alarm_names_a_resource_of_the_stack_and_notifies_ops_alerts(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    facts = facts_of(s)
    assert facts.alerts_topic_arn
    alarms = s.of_type(ALARM)
    assert len(alarms) == 8 + 5 + 2 * 10 + 4 + 1 + 1 + METRIC_ALARMS
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [facts.alerts_topic_arn], alarm.name
        assert alarm.inputs.get("actionsEnabled", True) is not False, alarm.name
        refs = [MetricRef(alarm.name, ns, m, dims) for ns, m, dims in alarm_metrics(alarm.inputs)]
        assert refs and unknown_operations_refs(facts, refs) == []


def test_the_ops_alerts_email_subscription_is_the_payment_chains_only(synth: SynthFn) -> None:
    s = synth("dev", overrides={"crowdfunding:alertEmail": "ops@example.com"})
    emails = [
        r for r in s.of_type("aws:sns/topicSubscription:TopicSubscription") if r.inputs["protocol"] == "email"
    ]
    assert [(r.name, r.inputs["endpoint"]) for r in emails] == [("ops-alerts-email-0", "ops@example.com")]


@pytest.mark.parametrize("stack", STACKS)
def test_business_metrics_are_the_contracts_as_the_functions_emit_them(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    facts = facts_of(s)
    refs = metric_refs(business_body(s))
    assert {r.namespace for r in refs} == {contract.METRICS_NAMESPACE}
    # Every metric the contract defines is drawn, once, and nothing else.
    assert sorted(r.metric for r in refs) == sorted(m.value for m in contract.Metric)
    for ref in refs:
        assert set(ref.filters) == {contract.METRICS_SERVICE_DIMENSION}
        # Powertools' `service` dimension is each function's POWERTOOLS_SERVICE_NAME as deployed.
        assert set(ref.values_of(contract.METRICS_SERVICE_DIMENSION)) == set(facts.service_names)


@pytest.mark.parametrize("stack", STACKS)
def test_failed_payments_table_queries_the_functions_that_receive_payment_failed(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    facts = facts_of(s)
    receivers = [
        spec.name
        for spec in catalog.all_specs()
        if isinstance(spec.trigger, TopicQueue) and contract.EventType.PAYMENT_FAILED in spec.trigger.events
    ]
    expected = sorted(facts.function_log_groups[f"{name.replace('_', '-')}-function"] for name in receivers)
    assert sorted(log_sources(business_body(s))) == expected
    assert set(expected) <= facts.log_groups
    [widget] = [w for w in business_body(s)["widgets"] if w["type"] == "log"]
    assert f'= "{contract.EventType.PAYMENT_FAILED}"' in widget["properties"]["query"]


def test_failed_payments_query_reads_fields_the_functions_log(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.shared.telemetry import correlated, function_logger

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")  # the lambda tests quieten the session
    logger = function_logger("observability_field_check")
    event = {
        "type": str(contract.EventType.PAYMENT_FAILED),
        "paymentId": "p-1",
        "fundingId": "f-1",
        "eventId": "e",
    }
    with correlated(logger, event):
        logger.info("event recorded")
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    query = business_dashboard.FAILED_PAYMENTS_QUERY
    fields = set(re.findall(r"\b([a-zA-Z]+)\b", query.split("\n")[0].removeprefix("fields "))) - {"timestamp"}
    fields |= {business_dashboard.EVENT_TYPE_LOG_KEY}
    assert fields <= set(record), fields - set(record)
    assert record[business_dashboard.EVENT_TYPE_LOG_KEY] == contract.EventType.PAYMENT_FAILED


def test_thresholds_come_from_stack_config(synth: SynthFn) -> None:
    s = synth(
        "dev",
        overrides={
            "crowdfunding:queueAgeAlarmSeconds": 3600,
            "crowdfunding:functionErrorsThreshold": 5,
            "crowdfunding:alb5xxRatePercent": 1.5,
            "crowdfunding:taskShortfallMinutes": 3,
        },
    )
    alarms = {a.name: a.inputs for a in s.of_type(ALARM)}
    assert alarms["observability-ledger-queue-age"]["threshold"] == 3600
    assert alarms["observability-payment-retry-function-errors"]["threshold"] == 5
    assert alarms["observability-api-5xx-rate"]["threshold"] == 1.5
    assert alarms["observability-api-task-shortfall"]["evaluationPeriods"] == 3
    default = {a.name: a.inputs for a in synth("dev").of_type(ALARM)}
    assert default["observability-ledger-queue-age"]["threshold"] == 1200


def test_preview_lists_both_dashboards_and_the_alarms(synth: SynthFn) -> None:
    tree = render_tree(synth("dev"))
    assert re.search(r"aws:cloudwatch:Dashboard\s+observability-operations", tree)
    assert re.search(r"aws:cloudwatch:Dashboard\s+observability-business", tree)
    assert len(re.findall(r"aws:cloudwatch:MetricAlarm\s+observability-", tree)) == (
        5 + 2 * 10 + 4 + 1 + 1 + METRIC_ALARMS
    )


# --- the coverage check fails when something is added without wiring -----------------------


def stack_plus(extra: Callable[[], None]) -> Callable[[], None]:
    def program() -> None:
        from infra.stack import main

        main()
        extra()

    return program


def test_coverage_fails_for_a_queue_added_without_wiring(synth: SynthFn) -> None:
    s = synth("dev", program=stack_plus(lambda: aws.sqs.Queue("stray")), config=read_stack_config("dev"))
    problems = coverage_problems(s)
    assert any("queue stray is not on the operations dashboard" in p for p in problems)
    assert any("queue stray has 0 age alarms" in p for p in problems)


def test_coverage_fails_for_a_function_added_without_wiring(synth: SynthFn) -> None:
    def extra() -> None:
        aws.lambda_.Function(
            "stray-function",
            role="arn:aws:iam::123456789012:role/stray",
            runtime="python3.12",
            handler="stray.handler",
            code=pulumi.AssetArchive({}),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={"POWERTOOLS_SERVICE_NAME": "stray"}),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group="stray-logs"),
        )

    s = synth("dev", program=stack_plus(extra), config=read_stack_config("dev"))
    problems = coverage_problems(s)
    assert "function stray-function: no Invocations on the dashboard" in problems
    assert "function stray-function: no Errors alarm" in problems
    assert "function stray-function: no Throttles alarm" in problems


# --- the books auditor's metrics -------------------------------------------------------------


def service_of(facts: StackFacts, function_resource: str) -> str:
    [service] = [name for name, logical in facts.service_names.items() if logical == function_resource]
    return service


@pytest.mark.parametrize("stack", STACKS)
def test_every_books_finding_and_the_auditors_silence_alarm_ops_alerts(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    facts = facts_of(s)
    period = books.rate_seconds(catalog.schedule_of(catalog.spec_of("books_auditor")))
    assert period == 900
    custom = {
        a.inputs["metricName"]: a.inputs
        for a in s.of_type(ALARM)
        if a.inputs.get("namespace") == contract.METRICS_NAMESPACE
    }
    assert sorted(custom) == ["AuditsCompleted", "BooksFindings", "LedgerConflicts"]
    auditor = {contract.METRICS_SERVICE_DIMENSION: service_of(facts, AUDITOR_RESOURCE)}
    findings = custom["BooksFindings"]
    assert findings["dimensions"] == auditor
    assert (
        findings["comparisonOperator"],
        findings["threshold"],
        findings["statistic"],
        findings["period"],
    ) == (
        "GreaterThanThreshold",
        0,
        "Maximum",
        period,
    )
    # Any one of the last two runs' periods: a run landing on a boundary is still seen.
    assert (findings["evaluationPeriods"], findings["datapointsToAlarm"], findings["treatMissingData"]) == (
        2,
        1,
        "notBreaching",
    )
    for alarm in custom.values():
        assert alarm["alarmActions"] == alarm["okActions"] == [facts.alerts_topic_arn]
    assert "make audit" in findings["alarmDescription"]
    assert all(f"{name}: " in findings["alarmDescription"] for name in FINDING_METRICS)
    silent = custom["AuditsCompleted"]
    assert silent["dimensions"] == auditor
    assert (silent["comparisonOperator"], silent["threshold"], silent["statistic"], silent["period"]) == (
        "LessThanThreshold",
        1,
        "Sum",
        3600,
    )
    assert silent["treatMissingData"] == "breaching"  # no data at all: the auditor stopped running
    conflicts = custom["LedgerConflicts"]
    assert conflicts["dimensions"] == {
        contract.METRICS_SERVICE_DIMENSION: service_of(facts, "ledger-recorder-function")
    }
    assert (conflicts["comparisonOperator"], conflicts["threshold"]) == ("GreaterThanThreshold", 0)


def test_the_business_dashboard_shows_one_point_per_audit_run(synth: SynthFn) -> None:
    body = business_body(synth("dev"))
    [findings] = [w for w in body["widgets"] if w["properties"]["title"] == "Books audit: findings per run"]
    assert findings["properties"]["stat"] == "Maximum" and findings["properties"]["period"] == 900
    refs = metric_refs({"widgets": [findings]})
    assert [r.metric for r in refs] == FINDING_METRICS
    assert all(", 'Maximum', 900)" in line[0]["expression"] for line in findings["properties"]["metrics"])


def test_coverage_fails_for_a_books_finding_without_its_alarm(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete = observability.watched_metrics
    monkeypatch.setattr(observability, "watched_metrics", lambda chain: complete(chain)[1:])
    s = synth("dev", program=stack_plus(lambda: None), config=read_stack_config("dev"))
    problems = coverage_problems(s)
    assert len(problems) == 1 and problems[0].startswith("books metric BooksFindings: alarms on services []")
