"""Building blocks of widget properties: metric lines, expressions, graphs and Logs Insights tables.

A metric line is CloudWatch's array form `[namespace, metric, dim, value, …, {options}]`, always
written out in full (no "." shorthand), so every line names its resource and a reader or a test
can check it without resolving references to the line above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from awsblocks.observability.layout import Widget

Line = list[Any]
"""One entry of a metric widget's `metrics` list."""

MAX_SEARCH_LENGTH = 1024
"""CloudWatch's limit on the query string of a SEARCH expression."""
_SEARCH_VALUE = re.compile(r"^[A-Za-z0-9_./:@+=-]+$")


def metric(
    namespace: str,
    name: str,
    dimensions: Mapping[str, str],
    *,
    label: str,
    stat: str | None = None,
    y_axis: str | None = None,
    id: str | None = None,
    visible: bool = True,
) -> Line:
    """One metric line with its dimensions and display options."""
    line: Line = [namespace, name]
    for key, value in dimensions.items():
        line += [key, value]
    options: dict[str, Any] = {"label": label}
    if stat:
        options["stat"] = stat
    if y_axis:
        options["yAxis"] = y_axis
    if id:
        options["id"] = id
    if not visible:
        options["visible"] = False
    return [*line, options]


def expression(expr: str, *, label: str, id: str, y_axis: str | None = None) -> Line:
    """A metric-math or SEARCH line."""
    options: dict[str, Any] = {"expression": expr, "label": label, "id": id}
    if y_axis:
        options["yAxis"] = y_axis
    return [options]


def quoted(value: str) -> str:
    """A value for a SEARCH term, in double quotes (an exact match); refuses characters that break it."""
    if not _SEARCH_VALUE.match(value):
        raise ValueError(
            f"{value!r} cannot appear in a SEARCH expression; allowed: letters, digits and _ . / : @ + = -"
        )
    return f'"{value}"'


def search(
    namespace: str,
    dimension_names: Sequence[str],
    metric_name: str,
    *,
    stat: str,
    period: int,
    filters: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """`SEARCH('{ns,dims} MetricName="m" AND (d="a" OR d="b")', 'stat', period)` with exact matches."""
    schema = ",".join([namespace, *dimension_names])
    terms = [f"MetricName={quoted(metric_name)}"]
    for key, values in (filters or {}).items():
        if values:
            terms.append("(" + " OR ".join(f"{key}={quoted(v)}" for v in values) + ")")
    query = f"{{{schema}}} {' AND '.join(terms)}"
    if len(query) > MAX_SEARCH_LENGTH:
        raise ValueError(
            f"the SEARCH query for {metric_name} is {len(query)} characters; allowed: at most "
            f"{MAX_SEARCH_LENGTH} (name fewer values to filter on)"
        )
    return f"SEARCH('{query}', '{stat}', {period})"


def graph(
    title: str,
    lines: Sequence[Line],
    *,
    stat: str = "Sum",
    period: int = 300,
    width: int = 8,
    height: int = 6,
    y_label: str | None = None,
    right_label: str | None = None,
    threshold: tuple[str, float] | None = None,
    view: str = "timeSeries",
    stacked: bool = False,
) -> Widget:
    """A metric widget; `threshold` draws a horizontal line (e.g. an alarm's threshold)."""
    properties: dict[str, Any] = {
        "metrics": [list(line) for line in lines],
        "view": view,
        "stacked": stacked,
        "stat": stat,
        "period": period,
    }
    axes: dict[str, Any] = {}
    if y_label:
        axes["left"] = {"label": y_label, "showUnits": False, "min": 0}
    if right_label:
        axes["right"] = {"label": right_label, "showUnits": False, "min": 0}
    if axes:
        properties["yAxis"] = axes
    if threshold is not None:
        label, value = threshold
        properties["annotations"] = {"horizontal": [{"label": label, "value": value}]}
    return Widget("metric", title, properties, width=width, height=height)


def log_table(
    title: str, log_group_names: Sequence[str], query: str, *, width: int = 24, height: int = 8
) -> Widget:
    """A Logs Insights widget: `SOURCE '<group>' | … | <query>` shown as a table."""
    if not log_group_names:
        raise ValueError(f"log widget {title!r}: no log groups; allowed: one or more log group names")
    if not query.strip():
        raise ValueError(f"log widget {title!r}: the query is empty")
    sources = " | ".join(f"SOURCE '{name}'" for name in log_group_names)
    return Widget(
        "log",
        title,
        {"query": f"{sources} | {query.strip()}", "view": "table", "stacked": False},
        width=width,
        height=height,
    )
