"""The rules as a `pulumi_policy` PolicyPack: `pulumi preview --policy-pack policies`.

Single-resource rules become `ResourceValidationPolicy`s (they see the resource's inputs);
cross-resource rules become `StackValidationPolicy`s (they see every resource's outputs,
which for pulumi_aws include the inputs plus ARNs, URLs and names). Both call the same
`policies.engine.check` as the tests, and honour the same waivers. Every policy is mandatory.

During a preview some values are unknown (the ARN of a queue not created yet). A rule that
needs one raises the engine's own `UnknownValueError` after reporting what it could decide,
so the CLI prints "can't run policy ... during preview" instead of a false pass or failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)
from pulumi_policy.secret import Secret

from policies.engine import Waivers, check, waiver_for
from policies.rules import RULES, Rule
from policies.view import EMPTY_STACK, ResourceView, StackIndex, Unknown, Unresolved
from policies.waivers import WAIVERS

PACK_NAME = "crowdfunding-aws"
PACK_DESCRIPTION = "The crowdfunding platform's AWS rules: DLQs, CMK encryption, TLS-only, least privilege."

_SENTINELS = frozenset(
    (
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    )
)


def plain(value: Any) -> Any:
    """The engine's props (unknown-checking proxies, secrets) as plain data with `Unknown` markers."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        raw = value["__target"] if type(value).__name__.endswith("Proxy") else value
        return {key: plain(item) for key, item in raw.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        raw = value["__target"] if type(value).__name__.endswith("Proxy") else value  # type: ignore[call-overload]
        return [plain(item) for item in raw]
    if isinstance(value, str) and value in _SENTINELS:
        return Unknown(value)
    return value


def view_of_resource_args(args: ResourceValidationArgs) -> ResourceView:
    """A resource under validation: its inputs (no outputs exist yet)."""
    return ResourceView(args.resource_type, args.name, args.urn, plain(args.props), {})


def view_of_policy_resource(resource: PolicyResource) -> ResourceView:
    """A resource of the stack: its outputs serve as both inputs and state."""
    props = plain(resource.props)
    return ResourceView(resource.resource_type, resource.name, resource.urn, props, props)


def _raise_unknown(unresolved: Unresolved) -> None:
    sentinel = unresolved.sentinel if unresolved.sentinel in _SENTINELS else UNKNOWN_STRING_VALUE
    raise UnknownValueError(sentinel, [unresolved.resource, *unresolved.path])


def _report(
    rule: Rule, view: ResourceView, stack: StackIndex, waivers: Waivers, report_violation: ReportViolation
) -> None:
    problems = check(rule, view, stack)
    if problems and waiver_for(rule.id, view.name, waivers, view.urn) is None:
        report_violation("; ".join(problems), view.urn)


def resource_validation(rule: Rule, waivers: Waivers = WAIVERS) -> Callable[..., None]:
    """The validate callback of a single-resource rule."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        try:
            _report(rule, view_of_resource_args(args), EMPTY_STACK, waivers, report_violation)
        except Unresolved as exc:
            _raise_unknown(exc)

    return validate


def stack_validation(rule: Rule, waivers: Waivers = WAIVERS) -> Callable[..., None]:
    """The validate callback of a cross-resource rule: every resource it applies to, then unknowns."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        views = [view_of_policy_resource(r) for r in args.resources]
        stack = StackIndex(views)
        undecided: list[Unresolved] = []
        for view in views:
            if view.type not in rule.types:
                continue
            try:
                _report(rule, view, stack, waivers, report_violation)
            except Unresolved as exc:
                undecided.append(exc)
        if undecided:
            _raise_unknown(undecided[0])

    return validate


def build_policies(rules: Sequence[Rule] = RULES, waivers: Waivers = WAIVERS) -> list[Policy]:
    """One mandatory policy per rule, named by the rule id."""
    policies: list[Policy] = []
    for rule in rules:
        if rule.scope == "resource":
            policies.append(
                ResourceValidationPolicy(
                    name=rule.id,
                    description=rule.description,
                    validate=resource_validation(rule, waivers),
                    enforcement_level=EnforcementLevel.MANDATORY,
                )
            )
        else:
            policies.append(
                StackValidationPolicy(
                    name=rule.id,
                    description=rule.description,
                    validate=stack_validation(rule, waivers),
                    enforcement_level=EnforcementLevel.MANDATORY,
                )
            )
    return policies
