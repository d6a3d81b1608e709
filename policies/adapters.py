"""From the mock harness (`toolchain.project`) to `ResourceView`s, without importing the harness.

Anything shaped like `toolchain.project.DeclaredResource` (type, name, urn, inputs, state) or a
`Synthesis` (iterable of them with `cloud_resources`) works.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from policies.engine import Finding, Waivers, evaluate
from policies.rules import RULES
from policies.view import ResourceView
from policies.waivers import WAIVERS


class Declared(Protocol):
    """The part of `toolchain.project.DeclaredResource` the adapter reads."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    state: dict[str, Any]


class HasCloudResources(Protocol):
    """The part of `toolchain.project.Synthesis` the adapter reads."""

    @property
    def cloud_resources(self) -> list[Any]: ...


def view_of_declared(resource: Declared) -> ResourceView:
    """One declared resource as a rule sees it (inputs, plus the mocks' computed state).

    The engine's resource id (what `resource.id` resolves to in the program, e.g. `sg-…`) wins
    over an `id` in the state, so references by id match.
    """
    state: dict[str, Any] = dict(getattr(resource, "state", None) or {})
    resource_id = getattr(resource, "id", "")
    if resource_id:
        state["id"] = resource_id
    return ResourceView(resource.type, resource.name, resource.urn, resource.inputs, state)


def views_of_synthesis(synthesis: HasCloudResources | Iterable[Declared]) -> list[ResourceView]:
    """Every cloud resource of a synthesized stack (components and providers left out)."""
    resources: Iterable[Declared] = (
        synthesis.cloud_resources if hasattr(synthesis, "cloud_resources") else synthesis
    )
    return [view_of_declared(r) for r in resources]


def evaluate_synthesis(synthesis: HasCloudResources, waivers: Waivers = WAIVERS) -> list[Finding]:
    """`evaluate` over a synthesized stack."""
    return evaluate(views_of_synthesis(synthesis), rules=RULES, waivers=waivers)
