"""Run a Pulumi program (a whole stack or one component) under the mock runtime and record it.

`synthesize(program, project=..., stack=..., config=...)` sets `pulumi.runtime.set_mocks` with a
`RecordingMonitor`, sets the config, runs the program and returns a `Synthesis`: every resource
with its type token, logical name, resolved inputs, parent and provider, plus the stack's and
each component's registered outputs. This is the documented way to unit-test a Pulumi program
(https://www.pulumi.com/docs/iac/guides/testing/unit/), kept in one place for the library's own
tests and for its users'.

Example::

    from awsblocks.testing import synthesize
    result = synthesize(lambda: Queue("orders", QueueArgs()), config={"aws:region": "eu-west-1"})
    assert result.of_type("aws:sqs/queue:Queue")
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from awsblocks.testing.mocks import OfflineMocks
from awsblocks.testing.recorder import STACK_TYPE, DeclaredResource, RecordingMonitor, plain


def as_config_string(value: Any) -> str:
    """Config values as the Pulumi CLI hands them to a program: strings, JSON for structures."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


@dataclass
class Synthesis:
    """Everything one run declared, with the queries tests and reports need."""

    stack: str
    resources: list[DeclaredResource]
    stack_outputs: dict[str, Any]
    component_outputs: dict[str, dict[str, Any]]

    def __iter__(self) -> Iterator[DeclaredResource]:
        return iter(self.resources)

    @property
    def by_urn(self) -> dict[str, DeclaredResource]:
        """Resources keyed by URN."""
        return {r.urn: r for r in self.resources}

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        """Every resource with this type token, in declaration order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> DeclaredResource:
        """The one resource with this logical name (and type); raises if none or many."""
        found = [r for r in self.resources if r.name == name and (type_token is None or r.type == type_token)]
        if len(found) != 1:
            raise LookupError(
                f"expected one resource named {name!r} ({type_token or 'any type'}), found {len(found)}"
            )
        return found[0]

    def children(self, parent: DeclaredResource) -> list[DeclaredResource]:
        """Direct children of a resource."""
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: DeclaredResource) -> list[DeclaredResource]:
        """Children, grandchildren and so on."""
        found: list[DeclaredResource] = []
        frontier = [parent.urn]
        while frontier:
            urn = frontier.pop()
            for child in self.resources:
                if child.parent == urn:
                    found.append(child)
                    frontier.append(child.urn)
        return found

    def component_of(self, resource: DeclaredResource) -> DeclaredResource | None:
        """The nearest component that contains this resource."""
        urns = self.by_urn
        parent = urns.get(resource.parent or "")
        while parent is not None and not parent.is_component:
            parent = urns.get(parent.parent or "")
        return parent

    def alias_urns(self) -> dict[str, list[str]]:
        """Every URN each resource answers to: its own first, then those its aliases (and its
        parent's) give it, as `pulumi up` matches them against the stack's state.

        A component whose type token changed carries an alias to its earlier type; its children
        follow through the parent's part of their URN (`parentType$type`); a provider type that
        was renamed (`aws:s3/bucketV2:BucketV2`) is an alias of the resource itself.
        """
        by_urn = self.by_urn

        def types(resource: DeclaredResource) -> list[str]:
            return [resource.type, *(a["type"] for a in resource.aliases if a.get("type"))]

        found: dict[str, list[str]] = {}
        for resource in self.resources:
            prefix = resource.urn.rsplit("::", 2)[0]
            parent = by_urn.get(resource.parent or "")
            names = [resource.name, *(a["name"] for a in resource.aliases if a.get("name"))]
            qualified = (
                [f"{p}${t}" for p in types(parent) for t in types(resource)] if parent else types(resource)
            )
            candidates = [f"{prefix}::{q}::{n}" for q in qualified for n in names]
            found[resource.urn] = [resource.urn, *(c for c in dict.fromkeys(candidates) if c != resource.urn)]
        return found

    @property
    def cloud_resources(self) -> list[DeclaredResource]:
        """Resources that would exist in AWS (no components, no providers)."""
        return [r for r in self.resources if r.custom and not r.is_provider]

    def count_by_type(self) -> Counter[str]:
        """How many cloud resources of each type the stack creates."""
        return Counter(r.type for r in self.cloud_resources)

    def provider_default_tags(self, resource: DeclaredResource) -> dict[str, str]:
        """The default tags of the provider a resource is created with."""
        if not resource.provider:
            return {}
        provider = self.by_urn.get(resource.provider)
        if provider is None:
            return {}
        default_tags = provider.inputs.get("defaultTags") or {}
        if isinstance(default_tags, str):
            default_tags = json.loads(default_tags)
        return dict(default_tags.get("tags") or {})

    def effective_tags(self, resource: DeclaredResource) -> dict[str, str]:
        """Tags AWS would show: provider default tags overlaid by the resource's own."""
        return {**self.provider_default_tags(resource), **(resource.inputs.get("tags") or {})}


def synthesize(
    program: Callable[[], Any],
    *,
    config: Mapping[str, str] | None = None,
    project: str = "test",
    stack: str = "test",
    mocks: pulumi_mocks.Mocks | None = None,
    monitor: RecordingMonitor | None = None,
) -> Synthesis:
    """Run `program` for `project`/`stack` under mocks with `config` and record every resource.

    `config` holds `<namespace>:<key>` strings as the CLI passes them (`aws:region` picks the
    mocks' region; default ap-northeast-2). Pass `monitor` to inspect what was declared even when
    the program fails.
    """
    raw = dict(config or {})
    region = raw.get("aws:region", "ap-northeast-2")
    monitor = monitor or RecordingMonitor(mocks or OfflineMocks(region))
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(raw)
    _sync_await(run_pulumi_func(program))
    root = settings.get_root_resource()
    stack_outputs: dict[str, Any] = {}
    if root is not None:
        for key, output in getattr(root, "outputs", {}).items():
            stack_outputs[key] = plain(_sync_await(pulumi.Output.from_input(output).future()))
    stack_urn_suffix = f"::{STACK_TYPE}::{project}-{stack}"
    resources = [
        DeclaredResource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=r.inputs,
            parent=r.parent if r.parent and not r.parent.endswith(stack_urn_suffix) else None,
            provider=r.provider,
            custom=r.custom,
            id=r.id,
            aliases=r.aliases,
            outputs=monitor.registered_outputs.get(r.urn, {}),
            state=r.state,
        )
        for r in (monitor.declared[urn] for urn in monitor.order)
    ]
    return Synthesis(
        stack=stack,
        resources=resources,
        stack_outputs=stack_outputs,
        component_outputs={
            urn: out for urn, out in monitor.registered_outputs.items() if urn in monitor.declared
        },
    )


_TOKEN_PATTERN = re.compile(r"^(?P<pkg>[^:]+):(?P<module>[^:]+):(?P<name>[^:]+)$")


def short_type(type_token: str) -> str:
    """`aws:ec2/subnet:Subnet` → `aws:ec2:Subnet`, the way `pulumi preview` prints types."""
    match = _TOKEN_PATTERN.match(type_token)
    if not match:
        return type_token
    module = match["module"].split("/")[0]
    return f"{match['pkg']}:{module}:{match['name']}"
