"""Grid placement: inside 24 columns, no overlaps, sections on fresh rows; the checks catch breakage."""

from __future__ import annotations

import pytest
from awsblocks.observability.layout import GRID_COLUMNS, Widget, dashboard_body, layout_problems, place
from hypothesis import given
from hypothesis import strategies as st

widgets = st.builds(
    Widget,
    type=st.just("metric"),
    title=st.text(alphabet="abcdef ", min_size=1, max_size=8).filter(str.strip),
    width=st.integers(1, GRID_COLUMNS),
    height=st.integers(1, 12),
)
sections = st.lists(st.lists(widgets, max_size=12), max_size=6)


@given(sections)
def test_any_sections_place_inside_the_grid_without_overlap(given_sections: list[list[Widget]]) -> None:
    body = dashboard_body(given_sections, "ap-northeast-2") if any(given_sections) else None
    if body is None:
        return
    assert layout_problems(body) == []
    assert len(body["widgets"]) == sum(len(s) for s in given_sections)


@given(sections)
def test_every_section_starts_below_the_previous_one(given_sections: list[list[Widget]]) -> None:
    placed = place(given_sections)
    index = 0
    bottom = 0
    for section in given_sections:
        chunk = placed[index : index + len(section)]
        index += len(section)
        if not chunk:
            continue
        assert chunk[0].x == 0 and chunk[0].y == bottom
        bottom = max(p.y + p.widget.height for p in chunk)


def test_rows_wrap_when_the_next_widget_does_not_fit() -> None:
    placed = place([[Widget("metric", "a", width=16), Widget("metric", "b", width=16, height=3)]])
    assert [(p.x, p.y) for p in placed] == [(0, 0), (0, 6)]


def body_of(*widgets: dict[str, object]) -> dict[str, object]:
    return {"widgets": list(widgets)}


def w(
    x: int, y: int, width: int = 8, height: int = 6, title: str | None = "t", region: str | None = "r"
) -> dict:
    properties: dict[str, object] = {}
    if title is not None:
        properties["title"] = title
    if region is not None:
        properties["region"] = region
    return {"type": "metric", "x": x, "y": y, "width": width, "height": height, "properties": properties}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (body_of(w(20, 0, width=8)), "outside the grid"),
        (body_of(w(-1, 0)), "outside the grid"),
        (body_of(w(0, 0), w(4, 3)), "overlaps"),
        (body_of(w(0, 0, title="")), "no title"),
        (body_of(w(0, 0, title=None)), "no title"),
        (body_of(w(0, 0, region=None)), "no region"),
        ({"widgets": []}, "no widgets"),
    ],
)
def test_layout_problems_name_what_is_wrong(body: dict[str, object], problem: str) -> None:
    problems = layout_problems(body)
    assert problems and problem in problems[0]


def test_adjacent_widgets_do_not_overlap() -> None:
    assert layout_problems(body_of(w(0, 0), w(8, 0), w(16, 0), w(0, 6, width=24))) == []


def test_widgets_refuse_bad_sizes_and_missing_titles() -> None:
    with pytest.raises(ValueError, match="width=25"):
        Widget("metric", "x", width=25)
    with pytest.raises(ValueError, match="height=0"):
        Widget("metric", "x", height=0)
    with pytest.raises(ValueError, match="title is empty"):
        Widget("metric", " ")
    with pytest.raises(ValueError, match="region is empty"):
        dashboard_body([[Widget("metric", "x")]], "")
