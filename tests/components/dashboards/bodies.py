"""Read a dashboard body back: which metrics (and SEARCH filters) and log groups each widget names."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_SEARCH = re.compile(
    r"SEARCH\('\{(?P<schema>[^}]*)\}\s*(?P<terms>.*?)',\s*'(?P<stat>[^']+)'(?:,\s*(?P<period>\d+))?\)"
)
_TERM = re.compile(r'(?P<key>[A-Za-z0-9_]+)="(?P<value>[^"]*)"')
_SOURCE = re.compile(r"SOURCE '([^']+)'")


@dataclass(frozen=True)
class MetricRef:
    """One metric a widget draws: explicit (`dimensions`) or found by SEARCH (`filters`)."""

    widget: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    searched: bool = False

    def values_of(self, dimension: str) -> tuple[str, ...]:
        """The dimension's value(s) this reference is restricted to."""
        if dimension in self.dimensions:
            return (self.dimensions[dimension],)
        return self.filters.get(dimension, ())


def parse_search(widget: str, expression: str) -> Iterator[MetricRef]:
    """Every SEARCH inside a metric-math expression."""
    for match in _SEARCH.finditer(expression):
        schema = [part.strip() for part in match["schema"].split(",")]
        filters: dict[str, list[str]] = {}
        metric = ""
        for term in _TERM.finditer(match["terms"]):
            if term["key"] == "MetricName":
                metric = term["value"]
            else:
                filters.setdefault(term["key"], []).append(term["value"])
        assert metric, f"{widget}: SEARCH without an exact MetricName: {expression}"
        unknown = set(filters) - set(schema[1:])
        assert not unknown, f"{widget}: SEARCH filters on {unknown}, not in its schema {schema}"
        yield MetricRef(
            widget, schema[0], metric, filters={k: tuple(v) for k, v in filters.items()}, searched=True
        )


def metric_refs(body: Mapping[str, Any]) -> list[MetricRef]:
    """Every metric every metric widget of the body names."""
    refs: list[MetricRef] = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        title = widget["properties"]["title"]
        for line in widget["properties"]["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            if "expression" in options:
                refs += parse_search(title, options["expression"])
                continue
            plain = line[:-1] if options else line
            assert "." not in plain, f"{title}: shorthand '.' in {line}"
            namespace, metric, *pairs = plain
            assert len(pairs) % 2 == 0, f"{title}: odd dimension list {line}"
            refs.append(MetricRef(title, namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return refs


def log_sources(body: Mapping[str, Any]) -> list[str]:
    """Every log group a Logs Insights widget queries."""
    return [
        group
        for widget in body["widgets"]
        if widget["type"] == "log"
        for group in _SOURCE.findall(widget["properties"]["query"])
    ]
