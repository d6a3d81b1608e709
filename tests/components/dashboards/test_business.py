"""The business dashboard: custom metrics summed over their emitters, and Logs Insights tables."""

from __future__ import annotations

import pytest
from awsblocks.observability.business import CustomMetrics, LogPanel, MetricPanel, business_dashboard
from awsblocks.observability.layout import layout_problems
from awsblocks.observability.widgets import MAX_SEARCH_LENGTH, search

from tests.components.dashboards.bodies import log_sources, metric_refs

METRICS = CustomMetrics(
    namespace="Shop",
    dimension="service",
    panels=(
        MetricPanel("Orders", ("OrdersPlaced", "OrdersShipped"), labels={"OrdersPlaced": "placed"}),
        MetricPanel("Revenue", ("Revenue",), y_label="Amount"),
    ),
    emitters=("checkout", "shipper"),
)


def test_each_metric_is_one_line_summing_its_emitters() -> None:
    body = business_dashboard("us-east-1", METRICS)
    assert layout_problems(body) == []
    refs = metric_refs(body)
    assert [(r.widget, r.metric) for r in refs] == [
        ("Orders", "OrdersPlaced"),
        ("Orders", "OrdersShipped"),
        ("Revenue", "Revenue"),
    ]
    assert all(r.namespace == "Shop" and r.values_of("service") == ("checkout", "shipper") for r in refs)
    lines = body["widgets"][0]["properties"]["metrics"]
    assert [line[0]["label"] for line in lines] == ["placed", "OrdersShipped"]
    assert all(line[0]["expression"].startswith("SUM(SEARCH('{Shop,service} ") for line in lines)
    assert len({line[0]["id"] for line in lines}) == len(lines)


def test_without_emitters_the_search_takes_every_emitter() -> None:
    metrics = CustomMetrics("Shop", "service", METRICS.panels)
    refs = metric_refs(business_dashboard("us-east-1", metrics))
    assert all(r.filters == {} for r in refs)


def test_log_panels_query_their_log_groups() -> None:
    body = business_dashboard(
        "us-east-1", None, [LogPanel("Failures", ("/aws/lambda/a", "/aws/lambda/b"), "fields @message")]
    )
    assert log_sources(body) == ["/aws/lambda/a", "/aws/lambda/b"]
    [widget] = body["widgets"]
    assert widget["width"] == 24 and widget["properties"]["query"].endswith("| fields @message")
    with pytest.raises(ValueError, match="no log groups"):
        business_dashboard("us-east-1", None, [LogPanel("Empty", (), "fields @message")])


def test_search_values_are_exact_matches_and_unsafe_values_are_refused() -> None:
    expr = search("NS", ["d"], "M", stat="Sum", period=60, filters={"d": ["a", "b"]})
    assert expr == 'SEARCH(\'{NS,d} MetricName="M" AND (d="a" OR d="b")\', \'Sum\', 60)'
    with pytest.raises(ValueError, match="cannot appear in a SEARCH"):
        search("NS", ["d"], "M", stat="Sum", period=60, filters={"d": ["it's"]})
    with pytest.raises(ValueError, match=f"at most {MAX_SEARCH_LENGTH}"):
        search("NS", ["d"], "M", stat="Sum", period=60, filters={"d": [f"s{i:04}" for i in range(200)]})


def test_panels_and_dashboards_refuse_nothing_to_show() -> None:
    with pytest.raises(ValueError, match="no metrics"):
        MetricPanel("Empty", ())
    with pytest.raises(ValueError, match="labels for metrics it does not show: Other"):
        MetricPanel("X", ("A",), labels={"Other": "o"})
    with pytest.raises(ValueError, match="nothing to show"):
        business_dashboard("us-east-1", None, [])
