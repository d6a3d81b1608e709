"""The architecture as a Mermaid flowchart, generated from the synthesized resources.

Components (the stack's top-level component resources) holding two or more drawn resources
are subgraphs (a one-node box would only repeat the node's name); topics, queues,
functions, tables, the container service, load balancers and schedules are nodes; the edges
are `topology` edges: subscriptions (labelled with the events their filter lets through),
event source mappings, redrive to dead-letter queues, schedules, IAM grants to tables and
topics, function-to-function invokes and load-balancer traffic. GitHub renders the result in
READMEs and pull-request comments.
"""

from __future__ import annotations

import hashlib
import re

from awsblocks.testing import DeclaredResource, Synthesis

from toolchain.report.topology import (
    EVENT_RULE,
    FUNCTION,
    LOAD_BALANCERS,
    QUEUE,
    SCHEDULE,
    SERVICE,
    TABLE,
    TOPIC,
    Topology,
)

_SHAPES: dict[str, tuple[str, str, str]] = {
    TOPIC: ("{{", "}}", "SNS"),
    QUEUE: ("[/", "/]", "SQS"),
    FUNCTION: ("(", ")", "λ"),
    TABLE: ("[(", ")]", "DynamoDB"),
    SERVICE: ("[[", "]]", "ECS"),
    EVENT_RULE: ("([", "])", "schedule"),
    SCHEDULE: ("([", "])", "schedule"),
    **{t: ("[", "]", "ALB") for t in LOAD_BALANCERS},
}

_ARROWS = {
    "subscription": "-->",
    "mapping": "==>",
    "redrive": "-.->",
    "schedule": "-->",
    "grant": "-.->",
    "invoke": "-->",
    "traffic": "==>",
}


def node_id(urn: str) -> str:
    """A stable Mermaid identifier for a resource (Mermaid ids cannot hold URN punctuation)."""
    name = urn.rsplit("::", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9]", "_", name)[:40]
    return f"{slug}_{hashlib.sha1(urn.encode()).hexdigest()[:6]}"


def _label(text: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return text.replace('"', "#quot;").replace("|", "#124;")


def _node_text(resource: DeclaredResource) -> str:
    kind = _SHAPES[resource.type][2]
    text = f"{kind} {resource.name}"
    if resource.type in (EVENT_RULE, SCHEDULE):
        expression = resource.inputs.get("scheduleExpression")
        if isinstance(expression, str):
            text = f"{resource.name}: {expression}"
    return text


def _top_component(synthesis: Synthesis, resource: DeclaredResource) -> DeclaredResource | None:
    """The outermost component containing a resource (a direct child of the stack)."""
    urns = synthesis.by_urn
    current = urns.get(resource.parent or "")
    top: DeclaredResource | None = None
    while current is not None:
        if current.is_component:
            top = current
        current = urns.get(current.parent or "")
    return top


def render_mermaid(topology: Topology, direction: str = "LR") -> str:
    """The flowchart source (without the ```mermaid fence), deterministic for a given stack."""
    synthesis = topology.synthesis
    groups: dict[str, list[DeclaredResource]] = {}
    loose: list[DeclaredResource] = []
    components: dict[str, DeclaredResource] = {}
    for resource in topology.nodes.values():
        top = _top_component(synthesis, resource)
        if top is None:
            loose.append(resource)
        else:
            components[top.urn] = top
            groups.setdefault(top.urn, []).append(resource)

    lines = [f"flowchart {direction}"]

    def emit(resource: DeclaredResource, indent: str) -> None:
        open_, close, _kind = _SHAPES[resource.type]
        lines.append(f'{indent}{node_id(resource.urn)}{open_}"{_label(_node_text(resource))}"{close}')

    for urn in sorted(groups, key=lambda u: (components[u].name, u)):
        if len(groups[urn]) < 2:  # a one-node box adds nothing: the node's label names it
            loose.extend(groups[urn])
            continue
        component = components[urn]
        token = component.type.rsplit(":", 1)[-1]
        lines.append(f'  subgraph {node_id(urn)}["{_label(component.name)} ({token})"]')
        for resource in sorted(groups[urn], key=lambda r: (r.type, r.name, r.urn)):
            emit(resource, "    ")
        lines.append("  end")
    for resource in sorted(loose, key=lambda r: (r.type, r.name, r.urn)):
        emit(resource, "  ")
    for key, text in sorted(topology.externals.items()):
        lines.append(f'  {node_id(key)}>"{_label(text)}"]')

    for edge in topology.edges:
        arrow = _ARROWS.get(edge.kind, "-->")
        source = node_id(edge.source)
        target = node_id(edge.target)
        if edge.label:
            lines.append(f'  {source} {arrow}|"{_label(edge.label)}"| {target}')
        else:
            lines.append(f"  {source} {arrow} {target}")
    return "\n".join(lines) + "\n"


def mermaid_block(topology: Topology) -> str:
    """The flowchart inside a ```mermaid fence, ready for Markdown."""
    return "```mermaid\n" + render_mermaid(topology) + "```\n"


README_STACK = "dev"
"""The stack whose diagram is the README's architecture picture."""


def readme_architecture() -> str:
    """The README's architecture block: the dev stack's flowchart in a ```mermaid fence."""
    from toolchain.project import synthesize
    from toolchain.report.topology import build_topology

    return mermaid_block(build_topology(synthesize(README_STACK)))
