"""What each role was granted, and what it used: least privilege, measured (`make iam-report`).

The emulator's gatekeeper files every authorized call under the caller's role (`/_local/iam`:
per role, (action, resource) → count, and the denials). The grants come from the roles'
policies as the emulator holds them now, listed with `awsblocks.security.iam.granted_actions`. Each
granted (action, resource) pair is shown with how often the role used it; a grant never used is
flagged UNUSED (a candidate for removal), a call that was refused is listed as DENIED (a grant
that is missing, or a call that should not happen). Log-delivery grants are used by the Lambda
and ECS services themselves, never by the code, so they are shown as `service`.

`make iam-report` prints this for the running local system (its state file names the emulator
and which function or task uses which role); with nothing running it starts the system, tells
the demo story (`local.demo`), prints the report and stops. `make run` prints the same
report when it stops.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from awsblocks.security.iam import granted_actions

SERVICE_USED_ACTIONS = frozenset({"logs:createlogstream", "logs:putlogevents", "logs:createloggroup"})
"""Grants the platform exercises on the role's behalf (log delivery), never the code."""

Usage = Mapping[str, Mapping[str, int]]
"""action → resource → count."""


@dataclass(frozen=True)
class GrantUse:
    """One granted (action, resource) pair and how often the role used it."""

    action: str
    resource: str
    uses: int
    service: bool = False
    """Exercised by the AWS service for the role (log delivery), not observable locally."""

    @property
    def unused(self) -> bool:
        """Granted, never used, and not a service's grant: a candidate for removal."""
        return self.uses == 0 and not self.service


@dataclass
class RoleReport:
    """One role: who runs as it, its grants with their use, and what it was denied."""

    role: str
    used_by: list[str]
    grants: list[GrantUse] = field(default_factory=list)
    denied: list[tuple[str, str, int]] = field(default_factory=list)
    problem: str = ""
    """Why the grants could not be listed (e.g. a NotAction statement)."""

    @property
    def unused(self) -> list[GrantUse]:
        """Grants flagged UNUSED."""
        return [grant for grant in self.grants if grant.unused]


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    """An IAM wildcard (`*`, `?`) as a case-sensitive regular expression."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$")


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return bool(_wildcard(pattern).match(value))


def role_report(
    role: str, policies: list[str], used: Usage, denied: Usage, used_by: list[str] | None = None
) -> RoleReport:
    """Compare a role's grants (its policy documents) with its use during the run."""
    report = RoleReport(role=role, used_by=list(used_by or []))
    granted: dict[str, set[str]] = {}
    for document in policies:
        try:
            for action, resources in granted_actions(document).items():
                granted.setdefault(action, set()).update(resources)
        except ValueError as exc:
            report.problem = str(exc)
    for action in sorted(granted):
        for resource in sorted(granted[action]):
            uses = sum(
                count
                for used_action, resources in used.items()
                if _matches(action, used_action, ignore_case=True)
                for used_resource, count in resources.items()
                if _matches(resource, used_resource)
            )
            service = action.lower() in SERVICE_USED_ACTIONS
            report.grants.append(GrantUse(action, resource, uses, service=service))
    report.denied = sorted(
        (action, resource, count)
        for action, resources in denied.items()
        for resource, count in resources.items()
    )
    return report


def short_arn(arn: str) -> str:
    """`arn:aws:dynamodb:ap-northeast-2:123456789012:table/x` → `table/x` (the part that differs)."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        return parts[5] if parts[5] else arn
    return arn


def render(reports: list[RoleReport], other_roles: list[str] | None = None) -> str:
    """The report as text: per role its grants (used / UNUSED / service) and its denials."""
    lines = ["", "IAM report: what each role was granted, and what it used during this run"]
    for report in reports:
        lines.append("")
        lines.append(f"  role {report.role}" + (f"  ({', '.join(report.used_by)})" if report.used_by else ""))
        if report.problem:
            lines.append(f"    (grants not listed: {report.problem})")
        width = max([len(g.action) for g in report.grants] + [len(d[0]) for d in report.denied] + [10])
        for grant in report.grants:
            status: str
            count: str
            if grant.service:
                status, count = "service", "-"
            elif grant.unused:
                status, count = "UNUSED", "-"
            else:
                status, count = "used", str(grant.uses)
            lines.append(f"    {status:<7} {count:>6}  {grant.action:<{width}}  {short_arn(grant.resource)}")
        for action, resource, times in report.denied:
            lines.append(f"    {'DENIED':<7} {times:>6}  {action:<{width}}  {short_arn(resource)}")
    unused = sum(len(r.unused) for r in reports)
    denied = sum(count for r in reports for *_, count in r.denied)
    flagged = [r.role for r in reports if r.unused]
    lines.append("")
    lines.append(
        f"  {unused} unused grant(s)"
        + (f" in {', '.join(flagged)}" if flagged else "")
        + f"; {denied} call(s) denied"
        + "; `service` grants are used by Lambda/ECS to deliver logs (not exercised locally)"
    )
    lines.append(
        "  KMS grants are exercised through encrypted SQS queues and SNS topics (the caller needs the "
        "key); DynamoDB uses its own grant on a table's key, so a KMS grant only tables need shows UNUSED"
    )
    if other_roles:
        lines.append(f"  not assumed locally (no local meaning): {', '.join(sorted(other_roles))}")
    return "\n".join(lines)


def users_of_roles(deployment: Mapping[str, Any]) -> dict[str, list[str]]:
    """role name → who runs as it locally (functions, their event source mappings, the API task)."""
    roles = deployment.get("roles") or {}
    name_of = {arn: str(role.get("name")) for arn, role in roles.items()}
    users: dict[str, list[str]] = {}
    mapped = {str(m.get("function")) for m in deployment.get("mappings") or []}
    for function in (deployment.get("functions") or {}).values():
        role = name_of.get(str(function.get("role")))
        if role:
            users.setdefault(role, []).append(f"function {function['name']}")
            if function["name"] in mapped:
                users[role].append("its event source mapping")
    for container in deployment.get("containers") or []:
        role = name_of.get(str(container.get("taskRoleArn")))
        if role:
            users.setdefault(role, []).append(f"ECS task {container.get('family')} (the API)")
    return users


def build(iam: Mapping[str, Any], deployment: Mapping[str, Any]) -> tuple[list[RoleReport], list[str]]:
    """Reports for the roles something runs as locally; the names of the other roles."""
    users = users_of_roles(deployment)
    reports = []
    others = []
    for role, facts in sorted((iam.get("roles") or {}).items()):
        if role not in users and not facts.get("used") and not facts.get("denied"):
            others.append(role)
            continue
        reports.append(
            role_report(
                role,
                list(facts.get("policies") or []),
                facts.get("used") or {},
                facts.get("denied") or {},
                users.get(role),
            )
        )
    return reports, others


def report_text(emulator_url: str, deployment: Mapping[str, Any]) -> str:
    """The report for the system whose emulator answers at `emulator_url`."""
    from toolchain.embedded.emulator import local_call

    reports, others = build(local_call(emulator_url, "/_local/iam"), deployment)
    return render(reports, others)
