"""The reviewer's report: what a stack creates, what it costs, what it breaks, as a picture.

`build_report(synthesis, load)` derives everything from one synthesis of the stack (the same
mock run `make preview` uses): resources by component, a monthly cost estimate idle and at a
stated load (`estimate`, priced by the dated table in `prices/`), every policy rule over every
resource (`findings`), and a Mermaid architecture diagram (`diagram`). `render` turns it into
Markdown and JSON; `diff` compares two reports; `python -m toolchain.report` is the CLI behind
`make report`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from awsblocks.testing import DeclaredResource, Synthesis, short_type

from toolchain.report.diagram import render_mermaid
from toolchain.report.estimate import Assumptions, CostEstimate, Load, estimate
from toolchain.report.findings import PolicyResults, run_policies
from toolchain.report.prices import PriceTable, load_prices
from toolchain.report.topology import Topology, build_topology

STACK_LEVEL = "(stack)"
"""Component column for resources declared outside any component."""


def _encode(value: Any) -> Any:
    """JSON for values the mocks keep as objects (assets, archives)."""
    for attr in ("path", "text", "uri"):
        inner = getattr(value, attr, None)
        if isinstance(inner, str):
            return {type(value).__name__: inner}
    assets = getattr(value, "assets", None)
    if isinstance(assets, dict):
        return {type(value).__name__: {k: _encode(v) for k, v in sorted(assets.items())}}
    return repr(value)


def canonical_json(value: Any) -> str:
    """Stable JSON (sorted keys) for digests and for the report file."""
    return json.dumps(value, sort_keys=True, default=_encode)


def jsonable(value: Any) -> Any:
    """`value` with assets and other objects replaced by JSON-friendly forms."""
    return json.loads(canonical_json(value))


def inputs_digest(resource: DeclaredResource) -> str:
    """A short hash of a resource's inputs: equal digests mean nothing to update."""
    return hashlib.sha256(canonical_json(resource.inputs).encode()).hexdigest()[:16]


def top_component(synthesis: Synthesis, resource: DeclaredResource) -> DeclaredResource | None:
    """The outermost component that contains `resource` (a direct child of the stack)."""
    urns = synthesis.by_urn
    current = urns.get(resource.parent or "")
    top: DeclaredResource | None = None
    while current is not None:
        if current.is_component:
            top = current
        current = urns.get(current.parent or "")
    return top


def component_label(component: DeclaredResource | None) -> str:
    """`name (Type)` of a component, or the stack-level marker."""
    if component is None:
        return STACK_LEVEL
    return f"{component.name} ({component.type.rsplit(':', 1)[-1]})"


def resources_by_component(synthesis: Synthesis) -> dict[str, dict[str, int]]:
    """Cloud resources per top-level component, counted per type (`aws:sqs:Queue` form)."""
    grouped: dict[str, Counter[str]] = {}
    for resource in synthesis.cloud_resources:
        label = component_label(top_component(synthesis, resource))
        grouped.setdefault(label, Counter())[short_type(resource.type)] += 1
    return {
        label: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        for label, counts in sorted(grouped.items(), key=lambda kv: (kv[0] == STACK_LEVEL, kv[0]))
    }


@dataclass
class Report:
    """Everything the reviewer reads about one stack."""

    stack: str
    synthesis: Synthesis
    topology: Topology
    cost: CostEstimate
    policies: PolicyResults
    diagram: str
    prices: PriceTable

    @property
    def components(self) -> dict[str, dict[str, int]]:
        """Resources per component and type."""
        return resources_by_component(self.synthesis)

    def resource_records(self) -> list[dict[str, Any]]:
        """One record per cloud resource: what diff mode compares."""
        records = []
        for resource in self.synthesis.cloud_resources:
            records.append(
                {
                    "urn": resource.urn,
                    "type": resource.type,
                    "name": resource.name,
                    "component": component_label(top_component(self.synthesis, resource)),
                    "digest": inputs_digest(resource),
                    "inputs": jsonable(resource.inputs),
                }
            )
        return sorted(records, key=lambda r: r["urn"])


def build_report(
    synthesis: Synthesis,
    load: Load,
    *,
    region: str | None = None,
    assumptions: Assumptions | None = None,
    prices: PriceTable | None = None,
) -> Report:
    """The report of one synthesis (one run of the program: reuse it for everything)."""
    table = prices or load_prices(region or _region_of(synthesis))
    topology = build_topology(synthesis)
    return Report(
        stack=synthesis.stack,
        synthesis=synthesis,
        topology=topology,
        cost=estimate(synthesis, load, table, assumptions, topology),
        policies=run_policies(synthesis),
        diagram=render_mermaid(topology),
        prices=table,
    )


def _region_of(synthesis: Synthesis) -> str:
    for resource in synthesis.resources:
        if resource.is_provider and isinstance(resource.inputs.get("region"), str):
            return str(resource.inputs["region"])
    from toolchain.report.prices import DEFAULT_REGION

    return DEFAULT_REGION


__all__ = ["Assumptions", "Load", "Report", "build_report", "resources_by_component"]
