"""The business dashboard: custom (EMF) metrics per period, and Logs Insights tables.

Functions that emit Embedded Metric Format through Powertools publish each metric with the
dimension `service` = the emitting function's service name. Which function emits which metric
is the code's business, and a metric may come from several, so each line is
`SUM(SEARCH('{<namespace>,<dimension>} MetricName="<m>" AND (<dimension>="a" OR …)', stat, period))`:
every emitter of that metric among the services you name, added up. Naming the services keeps
another stack's (or another team's) metrics with the same names off the graph, and a metric no
service emits yet draws nothing instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from awsblocks.observability.layout import Widget, dashboard_body
from awsblocks.observability.refs import V
from awsblocks.observability.widgets import expression, graph, log_table, search


@dataclass(frozen=True)
class MetricPanel:
    """One graph of custom metrics.

    Attributes:
        title: The graph's title.
        metrics: Metric names, one line each.
        labels: Legend text per metric name. Default: the metric name.
        stat: Statistic of each metric before the lines are summed over services. Default "Sum".
        period: Seconds per data point. Default 300 (per 5 minutes).
        y_label: Left axis label. Default "Count".
        width: Grid columns. Default 12.
        stacked: Stack the lines (an area chart). Default False.
    """

    title: str
    metrics: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    stat: str = "Sum"
    period: int = 300
    y_label: str = "Count"
    width: int = 12
    stacked: bool = False

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError(f"panel {self.title!r}: no metrics; allowed: one or more metric names")
        unknown = sorted(set(self.labels) - set(self.metrics))
        if unknown:
            raise ValueError(
                f"panel {self.title!r}: labels for metrics it does not show: {', '.join(unknown)}"
            )


@dataclass(frozen=True)
class CustomMetrics(Generic[V]):
    """Custom metrics and who emits them.

    Attributes:
        namespace: The CloudWatch namespace the metrics are published in.
        dimension: The dimension that tells emitters apart (Powertools: "service").
        emitters: Values of `dimension` whose metrics are shown (e.g. the functions' service
            names). Default none: every emitter in the namespace.
        panels: The graphs.
    """

    namespace: str
    dimension: str
    panels: tuple[MetricPanel, ...]
    emitters: tuple[V, ...] = ()

    def __post_init__(self) -> None:
        if not self.panels:
            raise ValueError("custom metrics without panels; allowed: one or more MetricPanel")

    def metric_names(self) -> list[str]:
        """Every metric shown, in panel order."""
        return [name for panel in self.panels for name in panel.metrics]


@dataclass(frozen=True)
class LogPanel(Generic[V]):
    """A Logs Insights table.

    Attributes:
        title: The table's title.
        log_group_names: The log groups queried.
        query: The Logs Insights query after the `SOURCE` clauses (fields, filter, stats, sort, limit).
        height: Grid rows. Default 8.
    """

    title: str
    log_group_names: tuple[V, ...]
    query: str
    height: int = 8


def emitted_metric_lines(metrics: CustomMetrics[str], panel: MetricPanel) -> list[list[Any]]:
    """One `SUM(SEARCH(...))` line per metric of the panel."""
    filters = {metrics.dimension: list(metrics.emitters)} if metrics.emitters else None
    return [
        expression(
            "SUM("
            + search(
                metrics.namespace,
                [metrics.dimension],
                name,
                stat=panel.stat,
                period=panel.period,
                filters=filters,
            )
            + ")",
            label=panel.labels.get(name, name),
            id=f"m{index}",
        )
        for index, name in enumerate(panel.metrics)
    ]


def business_dashboard(
    region: str, metrics: CustomMetrics[str] | None, logs: Sequence[LogPanel[str]] = ()
) -> dict[str, Any]:
    """The body of the business dashboard: a graph per panel, then a table per log panel."""
    if metrics is None and not logs:
        raise ValueError("nothing to show: pass custom metrics, log panels or both")
    graphs: list[Widget] = []
    if metrics is not None:
        for panel in metrics.panels:
            graphs.append(
                graph(
                    panel.title,
                    emitted_metric_lines(metrics, panel),
                    stat=panel.stat,
                    period=panel.period,
                    width=panel.width,
                    y_label=panel.y_label,
                    stacked=panel.stacked,
                )
            )
    tables = [
        log_table(panel.title, panel.log_group_names, panel.query, height=panel.height) for panel in logs
    ]
    return dashboard_body([section for section in (graphs, tables) if section], region)
