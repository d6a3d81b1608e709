"""Policy findings for the report: every rule of `policies/` over every resource of the stack.

`policies` (a sibling package, written and owned separately) exposes `evaluate(resources)`
returning findings that passed, failed or were waived. This module adapts the synthesized
resources, runs it and normalises the findings to `Finding`. When `policies` is not importable
the report says so instead of failing: the cost and the diagram are still worth reading.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awsblocks.testing import Synthesis, short_type

STATUSES = ("failed", "waived", "undecided", "passed")


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one resource."""

    rule: str
    status: str
    resource: str
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"rule": self.rule, "status": self.status, "resource": self.resource, "message": self.message}


@dataclass
class PolicyResults:
    """Every finding of a run, or why there are none."""

    available: bool
    findings: list[Finding] = field(default_factory=list)
    problem: str = ""

    def count(self) -> Counter[str]:
        """Findings per status."""
        return Counter(f.status for f in self.findings)

    def with_status(self, status: str) -> list[Finding]:
        """Findings of one status, sorted by rule and resource."""
        return sorted((f for f in self.findings if f.status == status), key=lambda f: (f.rule, f.resource))

    def passed_by_rule(self) -> dict[str, int]:
        """How many resources passed each rule."""
        return dict(sorted(Counter(f.rule for f in self.findings if f.status == "passed").items()))


def normalise(raw: Any) -> Finding:
    """A `policies.engine.Finding` as the report's `Finding` (the resource as `type name`)."""
    resource_type = str(getattr(raw, "resource_type", ""))
    name = str(getattr(raw, "resource_name", ""))
    message = str(getattr(raw, "message", "") or "")
    waiver = str(getattr(raw, "waiver", "") or "")
    status = str(getattr(raw, "status", "failed"))
    if status == "waived" and waiver:
        message = f"{waiver} (waived problem: {message})" if message else waiver
    return Finding(
        rule=str(getattr(raw, "rule", "")),
        status=status,
        resource=f"{short_type(resource_type)} {name}".strip(),
        message=message,
    )


def run_policies(synthesis: Synthesis) -> PolicyResults:
    """Every rule over every resource; `available=False` with the reason when `policies` is absent.

    Imported by name at run time: the report must still render (saying so) on a tree where
    `policies/` has not landed or does not import.
    """
    try:
        adapters = importlib.import_module("policies.adapters")
        evaluate_synthesis: Callable[[Synthesis], Any] = adapters.evaluate_synthesis
    except (ImportError, AttributeError) as exc:
        return PolicyResults(available=False, problem=f"policies/ not found ({exc})")
    return PolicyResults(available=True, findings=[normalise(item) for item in evaluate_synthesis(synthesis)])
