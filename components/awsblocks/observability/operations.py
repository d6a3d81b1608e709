"""The operations dashboard: is the system healthy right now, and where is it not?

One section per kind of resource, each graph one line per resource (so a new queue or function
is a new line, not a new layout):

- load balancer: requests; 4xx/5xx of the load balancer and of the targets; target response
  time p50/p99; healthy and unhealthy hosts;
- service: CPU and memory; running vs desired (and pending) tasks from Container Insights;
- queues: visible messages; age of the oldest message (with the alarm threshold drawn);
  dead-letter queue depth;
- functions: invocations, errors, throttles, duration p99, concurrent executions;
- tables: consumed read and write capacity, throttled requests, system errors.

DynamoDB publishes `ThrottledRequests` and `SystemErrors` per table *and operation* only, so
those two lines are `SUM(SEARCH(...))` over the table's operations (exact match on the table
name); every other line names its metric and dimensions explicitly.
"""

from __future__ import annotations

from typing import Any

from awsblocks.observability.alarms import AlarmThresholds
from awsblocks.observability.layout import Widget, dashboard_body
from awsblocks.observability.refs import Watched
from awsblocks.observability.widgets import Line, expression, graph, metric, quoted

PERIOD = 300


def _load_balancer_section(watched: Watched[str]) -> list[Widget]:
    widgets: list[Widget] = []
    for lb in watched.load_balancers:
        alb = {"LoadBalancer": lb.arn_suffix}
        tg = {"TargetGroup": lb.target_group_arn_suffix, "LoadBalancer": lb.arn_suffix}
        ns = "AWS/ApplicationELB"
        widgets += [
            graph(
                f"{lb.label}: requests",
                [metric(ns, "RequestCount", alb, label="Requests")],
                width=6,
                y_label="Count",
            ),
            graph(
                f"{lb.label}: 4xx and 5xx",
                [
                    metric(ns, "HTTPCode_Target_4XX_Count", alb, label="Target 4xx"),
                    metric(ns, "HTTPCode_Target_5XX_Count", alb, label="Target 5xx"),
                    metric(ns, "HTTPCode_ELB_4XX_Count", alb, label="Load balancer 4xx"),
                    metric(ns, "HTTPCode_ELB_5XX_Count", alb, label="Load balancer 5xx"),
                ],
                width=6,
                y_label="Count",
            ),
            graph(
                f"{lb.label}: target response time",
                [
                    metric(ns, "TargetResponseTime", tg, label="p50", stat="p50"),
                    metric(ns, "TargetResponseTime", tg, label="p99", stat="p99"),
                ],
                stat="p99",
                width=6,
                y_label="Seconds",
            ),
            graph(
                f"{lb.label}: healthy hosts",
                [
                    metric(ns, "HealthyHostCount", tg, label="Healthy", stat="Minimum"),
                    metric(ns, "UnHealthyHostCount", tg, label="Unhealthy", stat="Maximum"),
                ],
                stat="Minimum",
                period=60,
                width=6,
                y_label="Hosts",
            ),
        ]
    return widgets


def _service_section(watched: Watched[str]) -> list[Widget]:
    widgets: list[Widget] = []
    for service in watched.services:
        dims = {"ClusterName": service.cluster_name, "ServiceName": service.service_name}
        widgets += [
            graph(
                f"{service.label}: CPU and memory",
                [
                    metric("AWS/ECS", "CPUUtilization", dims, label="CPU"),
                    metric("AWS/ECS", "MemoryUtilization", dims, label="Memory"),
                ],
                stat="Average",
                period=60,
                width=12,
                y_label="Percent",
            ),
            graph(
                f"{service.label}: running vs desired tasks",
                [
                    metric("ECS/ContainerInsights", "RunningTaskCount", dims, label="Running"),
                    metric("ECS/ContainerInsights", "DesiredTaskCount", dims, label="Desired"),
                    metric("ECS/ContainerInsights", "PendingTaskCount", dims, label="Pending"),
                ],
                stat="Average",
                period=60,
                width=12,
                y_label="Tasks",
            ),
        ]
    return widgets


def _queue_section(watched: Watched[str], thresholds: AlarmThresholds | None) -> list[Widget]:
    sources = [q for q in watched.queues if not q.is_dead_letter]
    dead_letters = [(q.label, q.dead_letter) for q in watched.queues if q.dead_letter is not None]
    ns = "AWS/SQS"
    widgets: list[Widget] = []
    if sources:
        widgets.append(
            graph(
                "Queues: visible messages",
                [
                    metric(ns, "ApproximateNumberOfMessagesVisible", {"QueueName": q.name}, label=q.label)
                    for q in sources
                ],
                stat="Maximum",
                period=60,
                y_label="Messages",
            )
        )
        widgets.append(
            graph(
                "Queues: age of oldest message",
                [
                    metric(ns, "ApproximateAgeOfOldestMessage", {"QueueName": q.name}, label=q.label)
                    for q in sources
                ],
                stat="Maximum",
                period=60,
                y_label="Seconds",
                threshold=("alarm", thresholds.queue_age_seconds) if thresholds else None,
            )
        )
    if dead_letters:
        widgets.append(
            graph(
                "Dead-letter queues: depth",
                [
                    metric(ns, "ApproximateNumberOfMessagesVisible", {"QueueName": name}, label=label)
                    for label, name in dead_letters
                    if name is not None
                ],
                stat="Maximum",
                period=60,
                y_label="Messages",
                threshold=("alarm: any message", 0) if thresholds else None,
            )
        )
    return widgets


def _function_section(watched: Watched[str]) -> list[Widget]:
    if not watched.functions:
        return []

    def lines(name: str, stat: str | None = None) -> list[Line]:
        return [
            metric("AWS/Lambda", name, {"FunctionName": f.name}, label=f.label, stat=stat)
            for f in watched.functions
        ]

    return [
        graph("Functions: invocations", lines("Invocations"), y_label="Count"),
        graph("Functions: errors", lines("Errors"), y_label="Count"),
        graph("Functions: throttles", lines("Throttles"), y_label="Count"),
        graph(
            "Functions: duration p99", lines("Duration", "p99"), stat="p99", width=12, y_label="Milliseconds"
        ),
        graph(
            "Functions: concurrent executions",
            lines("ConcurrentExecutions", "Maximum"),
            stat="Maximum",
            period=60,
            width=12,
            y_label="Executions",
        ),
    ]


def _table_section(watched: Watched[str]) -> list[Widget]:
    if not watched.tables:
        return []
    ns = "AWS/DynamoDB"

    def per_operation(name: str) -> list[Line]:
        return [
            expression(
                f"SUM(SEARCH('{{{ns},TableName,Operation}} MetricName={quoted(name)} "
                f"AND TableName={quoted(t.name)}', 'Sum', {PERIOD}))",
                label=t.label,
                id=f"t{index}",
            )
            for index, t in enumerate(watched.tables)
        ]

    return [
        graph(
            "Tables: consumed read capacity",
            [
                metric(ns, "ConsumedReadCapacityUnits", {"TableName": t.name}, label=t.label)
                for t in watched.tables
            ],
            width=6,
            y_label="Units",
        ),
        graph(
            "Tables: consumed write capacity",
            [
                metric(ns, "ConsumedWriteCapacityUnits", {"TableName": t.name}, label=t.label)
                for t in watched.tables
            ],
            width=6,
            y_label="Units",
        ),
        graph("Tables: throttled requests", per_operation("ThrottledRequests"), width=6, y_label="Requests"),
        graph("Tables: system errors", per_operation("SystemErrors"), width=6, y_label="Requests"),
    ]


def operations_dashboard(
    watched: Watched[str], region: str, thresholds: AlarmThresholds | None = None
) -> dict[str, Any]:
    """The body of the operations dashboard for these resources (empty sections are left out).

    `thresholds`, when given, draws the alarm thresholds on the graphs they apply to.
    """
    if not watched.drawn:
        raise ValueError(
            "nothing to watch: pass at least one queue, function, table, load balancer or service "
            "(custom metrics alone are alarmed, not drawn here)"
        )
    sections = [
        _load_balancer_section(watched),
        _service_section(watched),
        _queue_section(watched, thresholds),
        _function_section(watched),
        _table_section(watched),
    ]
    return dashboard_body([s for s in sections if s], region)
