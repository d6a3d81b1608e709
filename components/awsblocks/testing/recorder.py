"""A mock monitor that records every resource a program declares, with its resolved inputs.

Pulumi's own `MockMonitor` answers registrations; `RecordingMonitor` also keeps each resource's
type, logical name, parent, provider, inputs (plain JSON-like values), the outputs a component
registers and the aliases it answers to, which is what tests and reviewers assert on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _ensure_event_loop

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class DeclaredResource:
    """One resource the program declared, with its inputs as the engine would receive them."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    custom: bool
    id: str = ""
    aliases: tuple[dict[str, str], ...] = ()
    """The old identities this resource answers to (`type`, `name` of each alias spec that sets them)."""
    outputs: dict[str, Any] = field(default_factory=dict, compare=False)
    state: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the provider (here: the mocks) returned: the inputs plus computed ids, ARNs, URLs.

    This is the shape a policy pack's stack validation sees (`PolicyResource.props`)."""

    @property
    def is_component(self) -> bool:
        """Components group children; they are not created in AWS."""
        return not self.custom

    @property
    def is_provider(self) -> bool:
        """Provider resources (`pulumi:providers:aws`)."""
        return self.type.startswith("pulumi:providers:")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The standard mock monitor, plus a record of parent, provider and inputs of every resource."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.declared: dict[str, DeclaredResource] = {}
        self.order: list[str] = []
        self.registered_outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        provider_ref = request.provider or None
        urn = response.urn
        self.declared[urn] = DeclaredResource(
            urn=urn,
            type=request.type,
            name=request.name,
            inputs=plain(inputs),
            parent=request.parent or None,
            provider=provider_ref.rsplit("::", 1)[0] if provider_ref else None,
            custom=bool(request.custom),
            id=response.id or "",
            aliases=_alias_specs(request),
            state=plain(self.resources[urn].state) if urn in self.resources else {},
        )
        self.order.append(urn)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        _ensure_event_loop()
        self.registered_outputs[request.urn] = plain(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


def _alias_specs(request: Any) -> tuple[dict[str, str], ...]:
    """The type and name each alias spec of a registration points back to."""
    found = []
    for alias in getattr(request, "aliases", None) or ():
        if alias.WhichOneof("alias") != "spec":
            continue
        spec = {key: getattr(alias.spec, key) for key in ("type", "name") if getattr(alias.spec, key)}
        if spec:
            found.append(spec)
    return tuple(found)


def plain(value: Any) -> Any:
    """Strip Pulumi's wrappers (secrets, resource references) down to JSON-like values."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return getattr(value, "_name", repr(value))
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {type(value).__name__[0].lower() + type(value).__name__[1:]: str(value.path)}
    if isinstance(value, pulumi.AssetArchive):
        return {"assetArchive": {k: plain(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"stringAsset": value.text}
    return value
