"""The diagram shows every topic, queue, function and table, and every subscription and mapping."""

from __future__ import annotations

import re

import pytest
from awsblocks.testing import Synthesis

from tests.conftest import SynthFn
from tests.report.pipeline import pipeline
from toolchain.report.diagram import node_id, render_mermaid
from toolchain.report.topology import (
    FUNCTION,
    MAPPING,
    QUEUE,
    SUBSCRIPTION,
    TABLE,
    TOPIC,
    Resolver,
    build_topology,
    filter_event_types,
)


def _synthesis(synth: SynthFn, which: str) -> Synthesis:
    return synth(program=pipeline) if which == "pipeline" else synth(which)


def _edges(diagram: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(\w+) [-=.>]+(?:\|[^|]*\|)? (\w+)$", diagram, re.MULTILINE))


@pytest.mark.parametrize("which", ["pipeline", "dev", "prod"])
def test_every_node_and_every_subscription_and_mapping_is_drawn(synth: SynthFn, which: str) -> None:
    synthesis = _synthesis(synth, which)
    diagram = render_mermaid(build_topology(synthesis))
    for type_token in (TOPIC, QUEUE, FUNCTION, TABLE):
        for resource in synthesis.of_type(type_token):
            assert re.search(rf"^\s*{node_id(resource.urn)}\W", diagram, re.MULTILINE), resource.name
    edges = _edges(diagram)
    resolver = Resolver(synthesis.resources)
    for sub in synthesis.of_type(SUBSCRIPTION):
        topic = resolver.find(sub.inputs["topic"], [TOPIC])
        target = resolver.find(sub.inputs["endpoint"], [QUEUE, FUNCTION])
        assert topic is not None
        if target is not None:
            assert (node_id(topic.urn), node_id(target.urn)) in edges, sub.name
    for mapping in synthesis.of_type(MAPPING):
        source = resolver.find(mapping.inputs["eventSourceArn"], [QUEUE, TABLE])
        function = resolver.find(mapping.inputs["functionName"], [FUNCTION])
        assert source is not None and function is not None, mapping.name
        assert (node_id(source.urn), node_id(function.urn)) in edges, mapping.name


def test_pipeline_edges_carry_filters_redrives_schedules_and_grants(synth: SynthFn) -> None:
    synthesis = synth(program=pipeline)
    diagram = render_mermaid(build_topology(synthesis))
    node = {r.name: node_id(r.urn) for r in synthesis.resources}
    assert f'{node["orders-topic"]} -->|"order.cancelled, order.paid"| {node["shipping-queue"]}' in diagram
    assert f'{node["orders-topic"]} -->|"all events"| {node["audit-queue"]}' in diagram
    assert f'{node["shipping-queue"]} -.->|"after 5 receives"| {node["shipping-dlq"]}' in diagram
    assert f"{node['sweeper-schedule']} --> {node['sweeper-function']}" in diagram
    assert f'{node["shipper-function"]} -.->|"reads + writes"| {node["shipments-table"]}' in diagram
    assert f'{node["sweeper-function"]} -.->|"reads"| {node["shipments-table"]}' in diagram
    assert f'{node["shipper-function"]} -.->|"publishes"| {node["orders-topic"]}' in diagram
    assert f'{node["shipper-function"]} -->|"invokes"| {node["labels-function"]}' in diagram
    assert re.search(r'subgraph \w+\["shipping \(Queue\)"\]', diagram)


def test_diagram_is_deterministic(synth: SynthFn) -> None:
    first = render_mermaid(build_topology(synth(program=pipeline)))
    second = render_mermaid(build_topology(synth(program=pipeline)))
    assert first == second


def test_filter_labels() -> None:
    assert filter_event_types('{"type": ["b", "a"]}') == ["a", "b"]
    assert filter_event_types({"type": [{"anything-but": "x"}]}) == ["not x"]
    assert filter_event_types({"type": [{"prefix": "payment."}]}) == ["payment.*"]
    assert filter_event_types(None) == []
