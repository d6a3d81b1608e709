"""What a dashboard or alarm watches: generic references to queues, functions, tables and services.

Each reference carries a plain `label` (titles, legend entries, alarm names: known when the
program is declared) and the resource's identifiers (names, ARN suffixes). The identifiers are
of a type parameter: plain strings when a pure function builds a dashboard body (tests, or
inside `Output.apply`), Pulumi Outputs when a component passes them straight to an alarm.
`Watched.values()` and `Watched.with_values()` flatten and rebuild them in one fixed order, so a
component resolves every Output with one `Output.all` and gets back the same structure of strings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")
W = TypeVar("W")

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_label(kind: str, label: str) -> None:
    """Labels name alarms and legend entries: letters, digits, `-`, `_`, `.`; 1 to 63 characters."""
    if not _LABEL.match(label):
        raise ValueError(
            f"{kind} label {label!r} is not allowed; allowed: 1 to 63 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )


@dataclass(frozen=True)
class WatchedQueue(Generic[V]):
    """An SQS queue and, if it has one, its dead-letter queue.

    Attributes:
        label: Short name for titles and alarm names (e.g. "orders").
        name: The queue's name (the `QueueName` dimension).
        dead_letter_name: The name of its dead-letter queue. Default None (no DLQ).
        is_dead_letter: The queue is itself a dead-letter queue (e.g. of a schedule): it is
            watched for depth only, with no age alarm. Default False.
        dead_letter_alarm_exists: A "DLQ not empty" alarm on the dead-letter queue (or on this
            queue, when `is_dead_letter`) already exists, as `awsblocks.messaging.queue.Queue` creates
            one: no second alarm is made. Default False (the component creates it).
    """

    label: str
    name: V
    dead_letter_name: V | None = None
    is_dead_letter: bool = False
    dead_letter_alarm_exists: bool = False

    def __post_init__(self) -> None:
        check_label("queue", self.label)
        if self.is_dead_letter and self.dead_letter_name is not None:
            raise ValueError(
                f"queue {self.label}: is_dead_letter=True with a dead_letter_name; allowed: a dead-letter "
                "queue has no dead-letter queue of its own"
            )

    @property
    def dead_letter(self) -> V | None:
        """The name of the queue that holds this queue's failed messages (itself when it is a DLQ)."""
        return self.name if self.is_dead_letter else self.dead_letter_name


@dataclass(frozen=True)
class WatchedFunction(Generic[V]):
    """A Lambda function.

    Attributes:
        label: Short name for legends and alarm names.
        name: The function name (the `FunctionName` dimension).
    """

    label: str
    name: V

    def __post_init__(self) -> None:
        check_label("function", self.label)


@dataclass(frozen=True)
class WatchedTable(Generic[V]):
    """A DynamoDB table.

    Attributes:
        label: Short name for legends and alarm names.
        name: The table name (the `TableName` dimension).
    """

    label: str
    name: V

    def __post_init__(self) -> None:
        check_label("table", self.label)


@dataclass(frozen=True)
class WatchedLoadBalancer(Generic[V]):
    """An Application Load Balancer and its target group.

    Attributes:
        label: Short name for titles and alarm names.
        arn_suffix: The ALB's ARN suffix, `app/<name>/<id>` (the `LoadBalancer` dimension).
        target_group_arn_suffix: The target group's ARN suffix, `targetgroup/<name>/<id>`.
    """

    label: str
    arn_suffix: V
    target_group_arn_suffix: V

    def __post_init__(self) -> None:
        check_label("load balancer", self.label)


@dataclass(frozen=True)
class WatchedService(Generic[V]):
    """An ECS service (its cluster must have Container Insights on for the task counts).

    Attributes:
        label: Short name for titles and alarm names.
        cluster_name: The cluster's name (the `ClusterName` dimension).
        service_name: The service's name (the `ServiceName` dimension).
    """

    label: str
    cluster_name: V
    service_name: V

    def __post_init__(self) -> None:
        check_label("service", self.label)


_STANDARD_PERIOD = 60


@dataclass(frozen=True)
class WatchedMetric(Generic[V]):
    """A custom metric whose value is itself the signal, e.g. a count of findings an auditor emits.

    It gets one alarm: the statistic over `period` above `threshold` (or below it, for a
    heartbeat) in any of the last `evaluation_periods` periods.

    Attributes:
        label: Short name for the alarm name (e.g. "books-unbalanced").
        namespace: The metric's namespace.
        metric_name: The metric's name.
        dimensions: Its dimensions, name → value (e.g. {"service": <the emitter's service name>}).
        description: What it means and what to do, shown in the notification (≤ 1024 characters).
        threshold: The value compared against. Default 0.
        below: Alarm when the statistic is below the threshold instead of above it (an emitter
            that stopped reporting). Default False.
        statistic: How each period's data points are aggregated. Default "Maximum".
        period: Seconds per period: a multiple of 60, at least the emitter's interval. Default 900.
        evaluation_periods: Periods looked at; any one breaching fires. Default 1.
        missing_is_breaching: A period without data breaches (the emitter went silent).
            Default False: no data is no news.
    """

    label: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, V]
    description: str
    threshold: float = 0
    below: bool = False
    statistic: str = "Maximum"
    period: int = 900
    evaluation_periods: int = 1
    missing_is_breaching: bool = False

    def __post_init__(self) -> None:
        check_label("metric", self.label)
        if not self.namespace or not self.metric_name:
            raise ValueError(f"metric {self.label}: namespace and metric_name are required")
        if self.period < _STANDARD_PERIOD or self.period % _STANDARD_PERIOD:
            raise ValueError(f"metric {self.label}: period={self.period}; allowed: a multiple of 60 seconds")
        if not 1 <= self.evaluation_periods <= 100:
            raise ValueError(
                f"metric {self.label}: evaluation_periods={self.evaluation_periods}; allowed: 1 to 100"
            )
        if not 1 <= len(self.description) <= 1024:
            raise ValueError(f"metric {self.label}: description must be 1 to 1024 characters")


def _unique(kind: str, labels: Sequence[str]) -> None:
    repeated = sorted(label for label, count in Counter(labels).items() if count > 1)
    if repeated:
        raise ValueError(f"{kind} labels repeat: {', '.join(repeated)}; allowed: one label per {kind}")


@dataclass(frozen=True)
class Watched(Generic[V]):
    """Everything one operations dashboard and its alarms watch.

    Attributes:
        queues: SQS queues (with their DLQs). Default none.
        functions: Lambda functions. Default none.
        tables: DynamoDB tables. Default none.
        load_balancers: Application Load Balancers with their target groups. Default none.
        services: ECS services. Default none.
        metrics: Custom metrics alarmed on their own value (not drawn on the operations
            dashboard: they belong with the business graphs). Default none.
    """

    queues: tuple[WatchedQueue[V], ...] = ()
    functions: tuple[WatchedFunction[V], ...] = ()
    tables: tuple[WatchedTable[V], ...] = ()
    load_balancers: tuple[WatchedLoadBalancer[V], ...] = ()
    services: tuple[WatchedService[V], ...] = ()
    metrics: tuple[WatchedMetric[V], ...] = ()

    def __post_init__(self) -> None:
        _unique("queue", [q.label for q in self.queues])
        _unique("function", [f.label for f in self.functions])
        _unique("table", [t.label for t in self.tables])
        _unique("load balancer", [lb.label for lb in self.load_balancers])
        _unique("service", [s.label for s in self.services])
        _unique("metric", [m.label for m in self.metrics])

    @property
    def empty(self) -> bool:
        """Nothing to watch."""
        return not (
            self.queues
            or self.functions
            or self.tables
            or self.load_balancers
            or self.services
            or self.metrics
        )

    @property
    def drawn(self) -> bool:
        """Something for the operations dashboard (custom metrics alone are not drawn there)."""
        return bool(self.queues or self.functions or self.tables or self.load_balancers or self.services)

    def map(self, fn: Callable[[V], W]) -> Watched[W]:
        """The same structure with every identifier passed through `fn`, in a fixed order."""
        return Watched(
            queues=tuple(
                WatchedQueue(
                    q.label,
                    fn(q.name),
                    fn(q.dead_letter_name) if q.dead_letter_name is not None else None,
                    q.is_dead_letter,
                    q.dead_letter_alarm_exists,
                )
                for q in self.queues
            ),
            functions=tuple(WatchedFunction(f.label, fn(f.name)) for f in self.functions),
            tables=tuple(WatchedTable(t.label, fn(t.name)) for t in self.tables),
            load_balancers=tuple(
                WatchedLoadBalancer(lb.label, fn(lb.arn_suffix), fn(lb.target_group_arn_suffix))
                for lb in self.load_balancers
            ),
            services=tuple(
                WatchedService(s.label, fn(s.cluster_name), fn(s.service_name)) for s in self.services
            ),
            metrics=tuple(
                WatchedMetric(
                    m.label,
                    m.namespace,
                    m.metric_name,
                    {name: fn(m.dimensions[name]) for name in sorted(m.dimensions)},
                    m.description,
                    m.threshold,
                    m.below,
                    m.statistic,
                    m.period,
                    m.evaluation_periods,
                    m.missing_is_breaching,
                )
                for m in self.metrics
            ),
        )

    def values(self) -> list[V]:
        """Every identifier, in the order `with_values` reads them back."""
        found: list[V] = []

        def collect(value: V) -> V:
            found.append(value)
            return value

        self.map(collect)
        return found

    def with_values(self, values: Sequence[W]) -> Watched[W]:
        """The same structure with the identifiers replaced, in `values()` order (e.g. resolved Outputs)."""
        expected = len(self.values())
        if len(values) != expected:
            raise ValueError(f"{len(values)} values for {expected} identifiers")
        source: Iterator[W] = iter(values)
        return self.map(lambda _old: next(source))
