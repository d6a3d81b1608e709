"""Alarm definitions as pure data: which metric, which threshold, how it is compared and evaluated.

`alarms_for(watched, thresholds)` is the catalogue: for every watched resource, the alarms an
operator needs. The identifiers may be plain strings (tests) or Pulumi Outputs (the component
passes them straight to `aws.cloudwatch.MetricAlarm`); nothing here resolves or creates anything.

| watched | alarm | metric |
|---|---|---|
| queue | oldest message older than `queue_age_seconds` | AWS/SQS ApproximateAgeOfOldestMessage, Maximum |
| dead-letter queue | not empty (unless one already exists) | AWS/SQS ApproximateNumberOfMessagesVisible > 0 |
| function | errors above `function_errors` | AWS/Lambda Errors, Sum |
| function | throttles above `function_throttles` | AWS/Lambda Throttles, Sum |
| table | read + write throttles above `table_throttles` | AWS/DynamoDB Read/WriteThrottleEvents, math |
| load balancer | 5xx share of requests above `alb_5xx_rate_percent` | AWS/ApplicationELB, metric math |
| service | running tasks below desired for `task_shortfall_minutes` | ECS/ContainerInsights, metric math |
| custom metric | above (or below) its threshold in any of its last periods | its own metric |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal

from awsblocks.observability.refs import (
    V,
    Watched,
    WatchedFunction,
    WatchedLoadBalancer,
    WatchedMetric,
    WatchedQueue,
    WatchedService,
    WatchedTable,
)

Comparison = Literal[
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
TreatMissingData = Literal["breaching", "notBreaching", "ignore", "missing"]
PERIODS: tuple[int, ...] = (10, 30, 60, 300, 900, 3600, 21600, 86400)
"""Alarm periods used here (standard resolution: a multiple of 60, or 10/30 for high resolution)."""


@dataclass(frozen=True)
class AlarmThresholds:
    """When the alarms fire.

    Attributes:
        queue_age_seconds: Oldest message older than this (a stalled consumer). Default 900.
        function_errors: Errors per 5 minutes above this count. Default 0 (any error).
        function_throttles: Throttles per 5 minutes above this count. Default 0 (any throttle).
        table_throttles: Read + write throttle events per 5 minutes above this. Default 0.
        alb_5xx_rate_percent: 5xx responses (load balancer's and targets') as a percentage of
            requests over 5 minutes, above this. Default 5.
        task_shortfall_minutes: Running tasks below desired for this many consecutive minutes
            (deployments and scale-outs close the gap within a few). Default 5.
    """

    queue_age_seconds: int = 900
    function_errors: int = 0
    function_throttles: int = 0
    table_throttles: int = 0
    alb_5xx_rate_percent: float = 5.0
    task_shortfall_minutes: int = 5

    def __post_init__(self) -> None:
        if not 60 <= self.queue_age_seconds <= 1_209_600:
            raise ValueError(f"queue_age_seconds={self.queue_age_seconds}; allowed: 60 to 1209600")
        for name in ("function_errors", "function_throttles", "table_throttles"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}; allowed: 0 or more")
        if not 0 < self.alb_5xx_rate_percent <= 100:
            raise ValueError(f"alb_5xx_rate_percent={self.alb_5xx_rate_percent}; allowed: above 0, up to 100")
        if not 1 <= self.task_shortfall_minutes <= 60:
            raise ValueError(f"task_shortfall_minutes={self.task_shortfall_minutes}; allowed: 1 to 60")


@dataclass(frozen=True)
class MetricStat(Generic[V]):
    """One CloudWatch metric and how it is aggregated."""

    namespace: str
    metric_name: str
    dimensions: Mapping[str, V]
    stat: str
    period: int


@dataclass(frozen=True)
class MetricQuery(Generic[V]):
    """One entry of a metric-math alarm: a metric (by `id`) or an expression over the ids."""

    id: str
    metric: MetricStat[V] | None = None
    expression: str | None = None
    label: str = ""
    return_data: bool = False


@dataclass(frozen=True)
class AlarmSpec(Generic[V]):
    """One alarm, as data.

    Attributes:
        key: Unique within a catalogue; names the alarm resource (`<key>`).
        kind: What it watches: "queue-age", "dead-letter", "function-errors", …
        subject: The label of the watched resource.
        description: What it means and what to do, shown in the notification.
        threshold: The value compared against.
        comparison: How the value is compared.
        evaluation_periods: Periods evaluated.
        datapoints_to_alarm: Breaching periods (of `evaluation_periods`) that fire it.
        treat_missing_data: What a period without data counts as.
        metric: The single metric, or None for a metric-math alarm.
        queries: The metric-math queries (exactly one returns data), or empty.
    """

    key: str
    kind: str
    subject: str
    description: str
    threshold: float
    comparison: Comparison
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: TreatMissingData
    metric: MetricStat[V] | None = None
    queries: tuple[MetricQuery[V], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if (self.metric is None) == (not self.queries):
            raise ValueError(f"alarm {self.key}: exactly one of metric and queries; got both or neither")
        if self.queries and sum(q.return_data for q in self.queries) != 1:
            raise ValueError(f"alarm {self.key}: exactly one query must return data")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise ValueError(
                f"alarm {self.key}: datapoints_to_alarm={self.datapoints_to_alarm}; allowed: 1 to "
                f"evaluation_periods ({self.evaluation_periods})"
            )


FIVE_MINUTES = 300


def queue_age_alarm(queue: WatchedQueue[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """The queue's oldest message is older than the threshold: its consumer is stalled or failing."""
    return AlarmSpec(
        key=f"{queue.label}-queue-age",
        kind="queue-age",
        subject=queue.label,
        description=(
            f"The oldest message in queue {queue.label} is older than {thresholds.queue_age_seconds} s: "
            "its consumer is stalled, failing or too slow. Check the consumer's errors and throttles."
        ),
        threshold=thresholds.queue_age_seconds,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        metric=MetricStat(
            "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": queue.name}, "Maximum", 60
        ),
    )


def dead_letter_alarm(queue: WatchedQueue[V]) -> AlarmSpec[V]:
    """Messages wait in the queue's dead-letter queue (or in the DLQ itself)."""
    watched = queue.dead_letter
    if watched is None:
        raise ValueError(f"queue {queue.label} has no dead-letter queue to alarm on")
    return AlarmSpec(
        key=f"{queue.label}-dead-letters",
        kind="dead-letter",
        subject=queue.label,
        description=(
            f"Messages are waiting in the dead-letter queue of {queue.label}: inspect them, fix the "
            "cause, then redrive."
        ),
        threshold=0,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        metric=MetricStat(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": watched}, "Maximum", 60
        ),
    )


def function_errors_alarm(function: WatchedFunction[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """Invocations of the function failed (unhandled exceptions, timeouts, out of memory)."""
    return AlarmSpec(
        key=f"{function.label}-function-errors",
        kind="function-errors",
        subject=function.label,
        description=(
            f"Function {function.label} failed more than {thresholds.function_errors} time(s) in 5 minutes "
            "(unhandled exceptions, timeouts or out of memory): read its log group."
        ),
        threshold=thresholds.function_errors,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        metric=MetricStat("AWS/Lambda", "Errors", {"FunctionName": function.name}, "Sum", FIVE_MINUTES),
    )


def function_throttles_alarm(function: WatchedFunction[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """Invocations of the function were throttled (concurrency exhausted)."""
    return AlarmSpec(
        key=f"{function.label}-function-throttles",
        kind="function-throttles",
        subject=function.label,
        description=(
            f"Function {function.label} was throttled more than {thresholds.function_throttles} time(s) in "
            "5 minutes: the account's or the function's concurrency is exhausted."
        ),
        threshold=thresholds.function_throttles,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        metric=MetricStat("AWS/Lambda", "Throttles", {"FunctionName": function.name}, "Sum", FIVE_MINUTES),
    )


def table_throttles_alarm(table: WatchedTable[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """Reads or writes to the table were throttled (a hot partition, or on-demand limits)."""
    dims = {"TableName": table.name}
    return AlarmSpec(
        key=f"{table.label}-table-throttles",
        kind="table-throttles",
        subject=table.label,
        description=(
            f"Table {table.label} throttled more than {thresholds.table_throttles} read or write "
            "request(s) in 5 minutes: a hot partition key or a burst above the table's limits."
        ),
        threshold=thresholds.table_throttles,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        queries=(
            MetricQuery("reads", MetricStat("AWS/DynamoDB", "ReadThrottleEvents", dims, "Sum", FIVE_MINUTES)),
            MetricQuery(
                "writes", MetricStat("AWS/DynamoDB", "WriteThrottleEvents", dims, "Sum", FIVE_MINUTES)
            ),
            MetricQuery(
                "throttled",
                expression="FILL(reads, 0) + FILL(writes, 0)",
                label="Throttle events",
                return_data=True,
            ),
        ),
    )


def alb_5xx_rate_alarm(lb: WatchedLoadBalancer[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """The share of requests answered with a 5xx (by the load balancer or the targets) is too high."""
    dims = {"LoadBalancer": lb.arn_suffix}

    def alb(id: str, name: str) -> MetricQuery[V]:
        return MetricQuery(id, MetricStat("AWS/ApplicationELB", name, dims, "Sum", FIVE_MINUTES))

    return AlarmSpec(
        key=f"{lb.label}-5xx-rate",
        kind="alb-5xx-rate",
        subject=lb.label,
        description=(
            f"More than {thresholds.alb_5xx_rate_percent:g}% of the requests to load balancer {lb.label} "
            "got a 5xx answer in 5 minutes (from the load balancer or the service): check the targets' "
            "health and the service's logs."
        ),
        threshold=thresholds.alb_5xx_rate_percent,
        comparison="GreaterThanThreshold",
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
        queries=(
            alb("requests", "RequestCount"),
            alb("elb5xx", "HTTPCode_ELB_5XX_Count"),
            alb("target5xx", "HTTPCode_Target_5XX_Count"),
            MetricQuery(
                "rate",
                expression="IF(requests > 0, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)",
                label="5xx rate (%)",
                return_data=True,
            ),
        ),
    )


def task_shortfall_alarm(service: WatchedService[V], thresholds: AlarmThresholds) -> AlarmSpec[V]:
    """Fewer tasks run than the service wants, for longer than a deployment or scale-out takes."""
    dims = {"ClusterName": service.cluster_name, "ServiceName": service.service_name}
    minutes = thresholds.task_shortfall_minutes
    return AlarmSpec(
        key=f"{service.label}-task-shortfall",
        kind="task-shortfall",
        subject=service.label,
        description=(
            f"Service {service.label} has run fewer tasks than desired for {minutes} minute(s): tasks are "
            "failing to start or their health checks fail. Check the service's events and logs."
        ),
        threshold=0,
        comparison="GreaterThanThreshold",
        evaluation_periods=minutes,
        datapoints_to_alarm=minutes,
        treat_missing_data="missing",
        queries=(
            MetricQuery(
                "desired", MetricStat("ECS/ContainerInsights", "DesiredTaskCount", dims, "Average", 60)
            ),
            MetricQuery(
                "running", MetricStat("ECS/ContainerInsights", "RunningTaskCount", dims, "Average", 60)
            ),
            MetricQuery(
                "shortfall", expression="desired - FILL(running, 0)", label="Tasks missing", return_data=True
            ),
        ),
    )


def custom_metric_alarm(watched: WatchedMetric[V]) -> AlarmSpec[V]:
    """The metric crossed its threshold in one of its last periods (e.g. an auditor found something)."""
    return AlarmSpec(
        key=f"{watched.label}-metric",
        kind="custom-metric",
        subject=watched.label,
        description=watched.description,
        threshold=watched.threshold,
        comparison="LessThanThreshold" if watched.below else "GreaterThanThreshold",
        evaluation_periods=watched.evaluation_periods,
        datapoints_to_alarm=1,
        treat_missing_data="breaching" if watched.missing_is_breaching else "notBreaching",
        metric=MetricStat(
            watched.namespace, watched.metric_name, watched.dimensions, watched.statistic, watched.period
        ),
    )


def alarms_for(watched: Watched[V], thresholds: AlarmThresholds) -> list[AlarmSpec[V]]:
    """Every alarm the watched resources need (see the module docstring's table)."""
    specs: list[AlarmSpec[V]] = []
    for queue in watched.queues:
        if not queue.is_dead_letter:
            specs.append(queue_age_alarm(queue, thresholds))
        if queue.dead_letter is not None and not queue.dead_letter_alarm_exists:
            specs.append(dead_letter_alarm(queue))
    for function in watched.functions:
        specs.append(function_errors_alarm(function, thresholds))
        specs.append(function_throttles_alarm(function, thresholds))
    for table in watched.tables:
        specs.append(table_throttles_alarm(table, thresholds))
    for lb in watched.load_balancers:
        specs.append(alb_5xx_rate_alarm(lb, thresholds))
    for service in watched.services:
        specs.append(task_shortfall_alarm(service, thresholds))
    specs += [custom_metric_alarm(metric) for metric in watched.metrics]
    keys = [spec.key for spec in specs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"alarm keys repeat: {', '.join(repeated)}; allowed: distinct labels")
    return specs
