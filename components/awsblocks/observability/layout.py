"""Grid placement of dashboard widgets, and the checks every generated body must pass.

CloudWatch dashboards are a 24-column grid; a widget has x, y, width and height in grid
units. `place` flows widgets left to right and wraps, each section starting on a new row, so a
body never has a widget outside the grid or two widgets on top of each other. `layout_problems`
states the same rules as checks, for tests and for the component's own guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GRID_COLUMNS = 24
"""Width of the CloudWatch dashboard grid."""
MAX_WIDGETS = 500
"""CloudWatch's limit of widgets on one dashboard."""


@dataclass(frozen=True)
class Widget:
    """One widget before placement.

    Attributes:
        type: CloudWatch widget type: "metric", "log", "alarm" or "text".
        title: Shown above the widget (every widget has one).
        properties: The widget's properties without `title` and `region` (the body adds both).
        width: Grid columns, 1 to 24. Default 8 (three per row).
        height: Grid rows, at least 1. Default 6.
    """

    type: str
    title: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    width: int = 8
    height: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.width <= GRID_COLUMNS:
            raise ValueError(f"widget {self.title!r}: width={self.width}; allowed: 1 to {GRID_COLUMNS}")
        if self.height < 1:
            raise ValueError(f"widget {self.title!r}: height={self.height}; allowed: 1 or more")
        if not self.title.strip():
            raise ValueError("widget title is empty; allowed: a non-empty title")


@dataclass(frozen=True)
class Placed:
    """A widget and its position on the grid."""

    widget: Widget
    x: int
    y: int


def place(sections: Sequence[Sequence[Widget]], columns: int = GRID_COLUMNS) -> list[Placed]:
    """Flow widgets into rows of `columns`; every section starts on a fresh row.

    A row is as tall as its tallest widget, so widgets of different heights never overlap.
    """
    placed: list[Placed] = []
    y = 0
    for section in sections:
        x = 0
        row_height = 0
        for widget in section:
            if widget.width > columns:
                raise ValueError(f"widget {widget.title!r}: width={widget.width} exceeds {columns} columns")
            if x + widget.width > columns:
                y += row_height
                x = 0
                row_height = 0
            placed.append(Placed(widget, x, y))
            x += widget.width
            row_height = max(row_height, widget.height)
        y += row_height
    return placed


def dashboard_body(sections: Sequence[Sequence[Widget]], region: str) -> dict[str, Any]:
    """The CloudWatch dashboard body (before `json.dumps`): placed widgets, each titled and regional."""
    if not region:
        raise ValueError("region is empty; allowed: an AWS region name such as ap-northeast-2")
    placed = place(sections)
    if len(placed) > MAX_WIDGETS:
        raise ValueError(f"{len(placed)} widgets; allowed: at most {MAX_WIDGETS} per dashboard")
    widgets = []
    for item in placed:
        widget = item.widget
        widgets.append(
            {
                "type": widget.type,
                "x": item.x,
                "y": item.y,
                "width": widget.width,
                "height": widget.height,
                "properties": {**widget.properties, "title": widget.title, "region": region},
            }
        )
    return {"widgets": widgets}


def layout_problems(body: Mapping[str, Any], columns: int = GRID_COLUMNS) -> list[str]:
    """Everything wrong with a body's layout: outside the grid, overlapping, untitled, no region."""
    problems: list[str] = []
    widgets = body.get("widgets")
    if not isinstance(widgets, list) or not widgets:
        return ["the body has no widgets"]
    cells: dict[tuple[int, int], str] = {}
    for index, widget in enumerate(widgets):
        props = widget.get("properties") or {}
        title = props.get("title")
        name = f"widget {index} ({title!r})"
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{name}: no title")
        if not props.get("region"):
            problems.append(f"{name}: no region")
        x, y, width, height = (widget.get(k) for k in ("x", "y", "width", "height"))
        if not all(isinstance(v, int) for v in (x, y, width, height)):
            problems.append(f"{name}: x, y, width and height must be whole numbers")
            continue
        assert (
            isinstance(x, int) and isinstance(y, int) and isinstance(width, int) and isinstance(height, int)
        )
        if x < 0 or y < 0 or width < 1 or height < 1 or x + width > columns:
            problems.append(f"{name}: x={x} y={y} width={width} height={height} is outside the grid")
            continue
        for cx in range(x, x + width):
            for cy in range(y, y + height):
                other = cells.get((cx, cy))
                if other is not None:
                    problems.append(f"{name} overlaps {other} at column {cx}, row {cy}")
                    break
                cells[(cx, cy)] = name
            else:
                continue
            break
    return problems
