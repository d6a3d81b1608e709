"""What a rule sees: one resource (type, name, urn, inputs) and, for cross-resource rules, the stack.

`ResourceView` is independent of where the resource came from: the mock harness
(`toolchain.project.DeclaredResource`, adapted in `policies.adapters`) or the Pulumi policy engine
(`pulumi_policy.PolicyResource` / `ResourceValidationArgs`, adapted in `policies.pack`).

During a real `pulumi preview` some values are not known yet (an ARN of a queue that does not
exist). Adapters turn those into `Unknown` markers; a rule that reads one through
`ResourceView.get` raises `Unresolved`, and the caller records the pair as undecidable instead of
guessing. The mock harness resolves everything, so offline every pair is decided.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Output attributes that name a resource; references between resources use one of these.
IDENTITY_KEYS = ("id", "arn", "name", "url", "bucket", "functionName", "repositoryName")


@dataclass(frozen=True)
class Unknown:
    """A value the engine cannot know before the update (kept with the engine's sentinel)."""

    sentinel: str = ""


class Unresolved(Exception):
    """A rule needed a value that is unknown until the update runs."""

    def __init__(self, resource: str, path: Sequence[str | int], sentinel: str = "") -> None:
        self.resource = resource
        self.path = [str(p) for p in path]
        self.sentinel = sentinel
        super().__init__(f"{resource}: value at .{'.'.join(self.path)} is unknown until the update")


def contains_unknown(value: Any) -> bool:
    """Whether an unknown marker sits anywhere inside `value`."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def _first_unknown(value: Any) -> Unknown | None:
    if isinstance(value, Unknown):
        return value
    items: Iterable[Any] = ()
    if isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    for item in items:
        found = _first_unknown(item)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class ResourceView:
    """One resource as a rule sees it.

    Attributes:
        type: Pulumi type token, e.g. `aws:sqs/queue:Queue`.
        name: Logical (Pulumi) name, the one `pulumi preview` prints.
        urn: The resource's URN (violations are attributed to it).
        inputs: Resource inputs in pulumi_aws camelCase (`visibilityTimeoutSeconds`).
        state: What the provider returned (inputs plus computed `arn`, `url`, `name`, `id`);
            empty when unknown (resource validation during preview sees inputs only).
    """

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`aws:sqs:Queue payments-dlq`: how messages name the resource."""
        return f"{short_type(self.type)} {self.name}"

    def get(self, *path: str | int, default: Any = None) -> Any:
        """The input at `path` (keys and list indexes), or `default` when absent.

        Raises `Unresolved` when the value (or anything inside it) is unknown until the update.
        """
        value: Any = self.inputs
        for step in path:
            if isinstance(value, Unknown):
                raise Unresolved(self.label, path, value.sentinel)
            if isinstance(value, Mapping) and isinstance(step, str):
                if step not in value or value[step] is None:
                    return default
                value = value[step]
            elif isinstance(value, list | tuple) and isinstance(step, int):
                if not -len(value) <= step < len(value):
                    return default
                value = value[step]
            else:
                return default
        unknown = _first_unknown(value)
        if unknown is not None:
            raise Unresolved(self.label, path, unknown.sentinel)
        return value

    def attr(self, key: str) -> Any:
        """A provider output (or the input of the same name) when known; None otherwise."""
        for source in (self.state, self.inputs):
            value = source.get(key)
            if value is not None and not contains_unknown(value):
                return value
        return None

    def physical_name(self) -> str | None:
        """The name the resource has in AWS (`name` output, else the `name` input)."""
        value = self.attr("name")
        return value if isinstance(value, str) and value else None

    def require_physical_name(self) -> str:
        """Like `physical_name`, but an unknown name raises `Unresolved` (auto-naming in preview)."""
        name = self.physical_name()
        if name is None:
            raise Unresolved(self.label, ["name"])
        return name

    @property
    def identities(self) -> frozenset[str]:
        """Every string another resource may use to refer to this one (ARN, URL, id, name)."""
        found: set[str] = set()
        for key in IDENTITY_KEYS:
            value = self.attr(key)
            if isinstance(value, str) and value:
                found.add(value)
        return frozenset(found)


def short_type(type_token: str) -> str:
    """`aws:sqs/queue:Queue` → `aws:sqs:Queue`, the way `pulumi preview` prints types."""
    parts = type_token.split(":")
    if len(parts) != 3:
        return type_token
    return f"{parts[0]}:{parts[1].split('/')[0]}:{parts[2]}"


class StackIndex:
    """All resources of a stack, for rules that must look at more than one resource."""

    def __init__(self, resources: Iterable[ResourceView]) -> None:
        self.resources: list[ResourceView] = list(resources)
        self._by_type: dict[str, list[ResourceView]] = {}
        for resource in self.resources:
            self._by_type.setdefault(resource.type, []).append(resource)

    def __iter__(self) -> Iterator[ResourceView]:
        return iter(self.resources)

    def of_type(self, *types: str) -> list[ResourceView]:
        """Resources with any of these type tokens, in declaration order."""
        return [r for t in types for r in self._by_type.get(t, [])]

    def find(self, types: Sequence[str], reference: Any) -> ResourceView | None:
        """The resource of one of `types` that `reference` (an ARN, URL, id or name) names."""
        if not isinstance(reference, str) or not reference:
            return None
        for resource in self.of_type(*types):
            if reference in resource.identities:
                return resource
        return None

    def referring(self, types: Sequence[str], key: str, target: ResourceView) -> list[ResourceView]:
        """Resources of `types` whose input `key` names `target` (e.g. QueuePolicy.queueUrl)."""
        identities = target.identities
        return [r for r in self.of_type(*types) if _known(r.inputs.get(key)) in identities]


EMPTY_STACK = StackIndex(())


def _known(value: Any) -> Any:
    return None if contains_unknown(value) else value


# --- policy documents ------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """IAM's "one value or a list of values" as a list (None → [])."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def parse_document(value: Any, where: ResourceView, key: str) -> dict[str, Any] | None:
    """A policy document given as a JSON string or a mapping; None when absent.

    A document that is not valid JSON is reported by the caller as a finding, never ignored:
    this raises `ValueError` with the resource and key.
    """
    if value is None or value == "":
        return None
    if isinstance(value, Unknown):
        raise Unresolved(where.label, [key], value.sentinel)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where.label}: {key} is not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{where.label}: {key} is not a JSON object")
        return parsed
    raise ValueError(f"{where.label}: {key} has unexpected type {type(value).__name__}")


def statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The statements of a policy document (a single statement object counts as one)."""
    if not document:
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def principal_is_everyone(principal: Any) -> bool:
    """`"*"` or `{"AWS": "*"}`: anyone, in any account."""
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in as_list(principal.get("AWS"))
    return False


def condition_values(statement: Mapping[str, Any], operators: Sequence[str], key: str) -> list[str]:
    """Values of condition `key` under any of `operators`, lower-cased as strings."""
    condition = statement.get("Condition") or {}
    found: list[str] = []
    if not isinstance(condition, Mapping):
        return found
    for operator, clauses in condition.items():
        if operator.lower() not in {o.lower() for o in operators} or not isinstance(clauses, Mapping):
            continue
        for clause_key, values in clauses.items():
            if clause_key.lower() == key.lower():
                found.extend(str(v).lower() for v in as_list(values))
    return found


def denies_insecure_transport(document: Mapping[str, Any] | None, service: str) -> bool:
    """Whether the document denies every `service` action to everyone when TLS is not used."""
    for statement in statements(document):
        if statement.get("Effect") != "Deny" or not principal_is_everyone(statement.get("Principal")):
            continue
        actions = {str(a).lower() for a in as_list(statement.get("Action"))}
        if not actions & {"*", f"{service.lower()}:*"}:
            continue
        if "false" in condition_values(statement, ("Bool", "BoolIfExists"), "aws:SecureTransport"):
            return True
    return False
