"""Run the rules over a set of resources: one `Finding` per (rule, resource) pair.

`evaluate(resources)` is what tests and reports call; the policy pack (`policies.pack`) uses
the same `check` so both enforce exactly the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from policies.rules import RULES, Rule
from policies.view import ResourceView, StackIndex, Unresolved
from policies.waivers import WAIVERS

Status = Literal["passed", "failed", "waived"]
Waivers = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class Finding:
    """The verdict of one rule on one resource.

    Attributes:
        rule: Rule id.
        resource_type: Type token of the resource.
        resource_name: Logical name of the resource.
        urn: The resource's URN.
        status: "passed", "failed" or "waived" (failed, but a recorded waiver accepts it).
        message: For failed and waived: which resource broke the rule and how to fix it.
        waiver: For waived: the recorded reason.
    """

    rule: str
    resource_type: str
    resource_name: str
    urn: str
    status: Status
    message: str = ""
    waiver: str = ""


def check(rule: Rule, resource: ResourceView, stack: StackIndex) -> list[str] | None:
    """Problems `rule` finds on `resource` as full messages; None when it does not apply.

    Raises `Unresolved` when a value the rule needs is unknown until the update.
    """
    if not rule.is_applicable(resource, stack):
        return None
    try:
        problems = rule.check(resource, stack)
    except ValueError as exc:  # a policy document that is not JSON is a finding, not a crash
        problems = [f"{exc}; fix: pass a valid JSON policy document"]
    return [f"{resource.label}: {problem}" for problem in problems]


def stack_of(urn: str) -> str:
    """The stack a URN belongs to: `urn:pulumi:<stack>::<project>::<type>::<name>` → `<stack>`."""
    head = urn.split("::", 1)[0]
    return head.rsplit(":", 1)[-1] if head.startswith("urn:pulumi:") else ""


def waiver_matches(pattern: str, resource_name: str, urn: str = "") -> bool:
    """Whether a waiver's pattern covers the resource.

    A plain glob matches the logical name on every stack; `<stack glob>::<name glob>` (e.g.
    `dev::*`) matches only on the stacks it names (the stack is read from the URN).
    """
    if "::" in pattern:
        stack_pattern, name_pattern = pattern.split("::", 1)
        return fnmatchcase(stack_of(urn), stack_pattern) and fnmatchcase(resource_name, name_pattern)
    return fnmatchcase(resource_name, pattern)


def waiver_for(rule_id: str, resource_name: str, waivers: Waivers = WAIVERS, urn: str = "") -> str | None:
    """The recorded reason that accepts `rule_id` failing on `resource_name` (in `urn`'s stack), if any."""
    for (waived_rule, pattern), reason in waivers.items():
        if waived_rule == rule_id and waiver_matches(pattern, resource_name, urn):
            return reason
    return None


def evaluate(
    resources: Iterable[ResourceView],
    *,
    rules: Sequence[Rule] = RULES,
    waivers: Waivers = WAIVERS,
) -> list[Finding]:
    """Every rule over every resource it applies to, in rule order then resource order.

    A value unknown until the update (only possible with engine-provided resources) fails the
    pair with a message saying so: nothing passes unchecked.
    """
    views = list(resources)
    stack = StackIndex(views)
    findings: list[Finding] = []
    for rule in rules:
        for resource in views:
            try:
                problems = check(rule, resource, stack)
            except Unresolved as exc:
                problems = [f"{exc}; the rule cannot decide before the update"]
            if problems is None:
                continue
            status: Status = "passed"
            message = "; ".join(problems)
            reason = ""
            if problems:
                waived = waiver_for(rule.id, resource.name, waivers, resource.urn)
                status = "waived" if waived else "failed"
                reason = waived or ""
            findings.append(
                Finding(rule.id, resource.type, resource.name, resource.urn, status, message, reason)
            )
    return findings


def failures(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that block: failed and not waived."""
    return [f for f in findings if f.status == "failed"]


def summary(findings: Iterable[Finding]) -> dict[str, int]:
    """How many pairs passed, failed and were waived."""
    counts = Counter(f.status for f in findings)
    return {status: counts.get(status, 0) for status in ("passed", "failed", "waived")}


def unused_waivers(findings: Iterable[Finding], waivers: Waivers = WAIVERS) -> list[tuple[str, str]]:
    """Waivers that accepted nothing in these findings (stale exceptions to remove)."""
    used = {
        key
        for f in findings
        if f.status == "waived"
        for key in waivers
        if key[0] == f.rule and waiver_matches(key[1], f.resource_name, f.urn)
    }
    return [key for key in waivers if key not in used]
