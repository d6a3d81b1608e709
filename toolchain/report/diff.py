"""Diff mode: what the working tree changes against a git ref, by resource type and by cost line.

`synthesize_at_ref` checks the ref out into a temporary `git worktree`, runs *that tree's*
program under the mocks in a subprocess (same interpreter, cwd and PYTHONPATH at the worktree,
so its own `infra/`, `components/` and `Pulumi.<stack>.yaml` are used) and reads back the
recorded resources as JSON; the worktree is removed afterwards. Both sides are then priced and
drawn by the *current* report code with the same load, so a cost delta is caused by the
infrastructure change alone, never by a change in the estimator.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awsblocks.testing import DeclaredResource, Synthesis, short_type

from toolchain.project import REPO_ROOT

if TYPE_CHECKING:
    from toolchain.report import Report

_MARKER = "@@toolchain.report.synthesis@@"


def content_addressed(value: Any) -> Any:
    """File assets and archives as the hash of their bytes, as Pulumi compares them: the same
    package built in another checkout (another path) is not a change."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("fileAsset", "fileArchive"):
            path = Path(str(next(iter(value.values()))))
            if path.is_file():
                return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            return value
        return {key: content_addressed(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [content_addressed(inner) for inner in value]
    return value


# Runs inside the base worktree: its own harness, toolchain.project (since the layout step) or
# infra.synth (before), and only the resource fields that have existed since the harness's first
# version; `state` and `aliases` are optional.
_DUMP_SCRIPT = f"""
import hashlib, json, sys
from pathlib import Path
from typing import Any
if Path("toolchain/project.py").is_file():  # the tree's own harness, not an installed one
    from toolchain.project import synthesize
else:
    from infra.synth import synthesize
stack = sys.argv[1]
synthesis = synthesize(stack)

def encode(value):
    for attr in ("path", "text", "uri"):
        inner = getattr(value, attr, None)
        if isinstance(inner, str):
            return {{type(value).__name__: inner}}
    return repr(value)

{inspect.getsource(content_addressed)}
records = [
    {{
        "urn": r.urn, "type": r.type, "name": r.name, "inputs": content_addressed(r.inputs),
        "parent": r.parent,
        "provider": r.provider, "custom": r.custom, "id": getattr(r, "id", ""),
        "aliases": list(getattr(r, "aliases", ())),
        "state": getattr(r, "state", {{}}) or {{}},
    }}
    for r in synthesis.resources
]
print({_MARKER!r} + json.dumps({{"stack": stack, "resources": records}}, default=encode, sort_keys=True))
"""


class BaseRefError(RuntimeError):
    """The base ref cannot be checked out or its program cannot be synthesized."""


@dataclass(frozen=True)
class ResourceChange:
    """A resource present on both sides whose inputs differ."""

    urn: str
    type: str
    name: str
    keys: tuple[str, ...]


@dataclass
class CostDelta:
    """One cost line on both sides."""

    item: str
    base_idle: float
    head_idle: float
    base_load: float
    head_load: float

    @property
    def idle(self) -> float:
        """Change in the idle monthly cost."""
        return self.head_idle - self.base_idle

    @property
    def load(self) -> float:
        """Change in the monthly cost at load."""
        return self.head_load - self.base_load


@dataclass
class StackDiff:
    """Resources added, removed and changed, and the cost delta per line item."""

    base: str
    added: list[DeclaredResource] = field(default_factory=list)
    removed: list[DeclaredResource] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    costs: list[CostDelta] = field(default_factory=list)
    base_missing: bool = False

    @property
    def by_type(self) -> dict[str, dict[str, int]]:
        """Per resource type (short form): how many added, removed, changed."""
        table: dict[str, Counter[str]] = {}
        for kind, items in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
            for item in items:
                table.setdefault(short_type(item.type), Counter())[kind] += 1
        return {
            t: {k: c.get(k, 0) for k in ("added", "removed", "changed")} for t, c in sorted(table.items())
        }

    @property
    def idle_delta(self) -> float:
        """Total change in the idle monthly cost."""
        return sum(c.idle for c in self.costs)

    @property
    def load_delta(self) -> float:
        """Total change in the monthly cost at load."""
        return sum(c.load for c in self.costs)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "base": self.base,
            "baseMissing": self.base_missing,
            "byType": self.by_type,
            "added": sorted(r.urn for r in self.added),
            "removed": sorted(r.urn for r in self.removed),
            "changed": [{"urn": c.urn, "keys": list(c.keys)} for c in self.changed],
            "cost": [
                {
                    "item": c.item,
                    "baseIdleUsd": round(c.base_idle, 2),
                    "headIdleUsd": round(c.head_idle, 2),
                    "baseLoadUsd": round(c.base_load, 2),
                    "headLoadUsd": round(c.head_load, 2),
                }
                for c in self.costs
            ],
            "idleDeltaUsd": round(self.idle_delta, 2),
            "loadDeltaUsd": round(self.load_delta, 2),
        }


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    from toolchain.report import canonical_json

    keys = set(before) | set(after)
    return tuple(sorted(k for k in keys if canonical_json(before.get(k)) != canonical_json(after.get(k))))


def diff_reports(base: Report | None, head: Report, base_label: str) -> StackDiff:
    """Compare two reports of the same stack (base None: the stack does not exist at the ref)."""
    result = StackDiff(base=base_label, base_missing=base is None)
    base_resources = {r.urn: r for r in base.synthesis.cloud_resources} if base else {}
    # A resource renamed with an alias (a component's new type token) is the same resource.
    aliases = head.synthesis.alias_urns()
    head_resources = {
        next((u for u in aliases[r.urn] if u in base_resources), r.urn): r
        for r in head.synthesis.cloud_resources
    }
    result.added = sorted(
        (r for u, r in head_resources.items() if u not in base_resources), key=lambda r: r.urn
    )
    result.removed = sorted(
        (r for u, r in base_resources.items() if u not in head_resources), key=lambda r: r.urn
    )
    for urn in sorted(set(head_resources) & set(base_resources)):
        keys = _changed_keys(
            content_addressed(base_resources[urn].inputs), content_addressed(head_resources[urn].inputs)
        )
        if keys:
            resource = head_resources[urn]
            result.changed.append(ResourceChange(urn, resource.type, resource.name, keys))
    base_lines = {li.item: li for li in base.cost.lines} if base else {}
    head_lines = {li.item: li for li in head.cost.lines}
    for item in sorted(set(base_lines) | set(head_lines)):
        b = base_lines.get(item)
        h = head_lines.get(item)
        delta = CostDelta(
            item=item,
            base_idle=b.idle_cost if b else 0.0,
            head_idle=h.idle_cost if h else 0.0,
            base_load=b.load_cost if b else 0.0,
            head_load=h.load_cost if h else 0.0,
        )
        if abs(delta.idle) >= 0.005 or abs(delta.load) >= 0.005:
            result.costs.append(delta)
    result.costs.sort(key=lambda c: (-abs(c.idle), -abs(c.load), c.item))
    return result


def _money(value: float, signed: bool = False) -> str:
    text = f"${abs(value):,.2f}"
    if not signed:
        return text
    return ("+" if value >= 0 else "-") + text


def render_diff(diff: StackDiff, limit: int = 60) -> list[str]:
    """Markdown lines of the diff section."""
    lines = [f"## Changes against `{diff.base}`", ""]
    if diff.base_missing:
        lines += [f"The stack does not exist at `{diff.base}`: everything below is new.", ""]
    lines.append(
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed; "
        f"cost {_money(diff.idle_delta, True)} idle, {_money(diff.load_delta, True)} at load per month."
    )
    lines.append("")
    if diff.by_type:
        lines += ["| type | added | removed | changed |", "|---|---:|---:|---:|"]
        for type_name, counts in diff.by_type.items():
            lines.append(f"| `{type_name}` | {counts['added']} | {counts['removed']} | {counts['changed']} |")
        lines.append("")
        rows = [("+", r.type, r.name, "") for r in diff.added]
        rows += [("-", r.type, r.name, "") for r in diff.removed]
        rows += [("~", c.type, c.name, ", ".join(c.keys)) for c in diff.changed]
        lines += ["| | resource | type | changed inputs |", "|---|---|---|---|"]
        for sign, type_token, name, keys in rows[:limit]:
            lines.append(f"| {sign} | {name} | `{short_type(type_token)}` | {keys} |")
        if len(rows) > limit:
            lines.append(f"| | … and {len(rows) - limit} more (see the JSON report) | | |")
        lines.append("")
    if diff.costs:
        lines += [
            "| cost item | idle before | idle after | Δ idle | load before | load after | Δ load |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in diff.costs:
            lines.append(
                f"| {c.item} | {_money(c.base_idle)} | {_money(c.head_idle)} | {_money(c.idle, True)} | "
                f"{_money(c.base_load)} | {_money(c.head_load)} | {_money(c.load, True)} |"
            )
        lines.append(
            f"| **total** | | | **{_money(diff.idle_delta, True)}** | | | "
            f"**{_money(diff.load_delta, True)}** |"
        )
        lines.append("")
    return lines


# --- the base side: a git worktree and a subprocess ------------------------------------------


def _git(*args: str, cwd: Path = REPO_ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BaseRefError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _restore_state(resource: DeclaredResource, region: str) -> DeclaredResource:
    """Fill in the mock outputs for a record from a harness that did not keep them."""
    if resource.state or not resource.custom or resource.is_provider:
        return resource
    from awsblocks.testing import OfflineMocks
    from pulumi.runtime import mocks as pulumi_mocks

    args = pulumi_mocks.MockResourceArgs(
        typ=resource.type,
        name=resource.name,
        inputs=resource.inputs,
        provider="",
        resource_id="",
        custom=True,
    )
    _id, state = OfflineMocks(region).new_resource(args)
    return DeclaredResource(
        urn=resource.urn,
        type=resource.type,
        name=resource.name,
        inputs=resource.inputs,
        parent=resource.parent,
        provider=resource.provider,
        custom=resource.custom,
        id=resource.id,
        state=state,
    )


def synthesis_from_json(document: dict[str, Any]) -> Synthesis:
    """A `Synthesis` rebuilt from the records the dump script prints."""
    resources = [
        DeclaredResource(
            urn=r["urn"],
            type=r["type"],
            name=r["name"],
            inputs=r.get("inputs") or {},
            parent=r.get("parent"),
            provider=r.get("provider"),
            custom=bool(r.get("custom")),
            id=r.get("id") or "",
            aliases=tuple(r.get("aliases") or ()),
            state=r.get("state") or {},
        )
        for r in document["resources"]
    ]
    region = next(
        (
            str(r.inputs["region"])
            for r in resources
            if r.is_provider and isinstance(r.inputs.get("region"), str)
        ),
        "ap-northeast-2",
    )
    resources = [_restore_state(r, region) for r in resources]
    return Synthesis(stack=document["stack"], resources=resources, stack_outputs={}, component_outputs={})


def synthesize_at_ref(stack: str, ref: str, timeout: float = 300.0) -> Synthesis | None:
    """The stack as the program at `ref` declares it; None when `Pulumi.<stack>.yaml` is absent there."""
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    files = _git("ls-tree", "--name-only", commit).splitlines()
    if f"Pulumi.{stack}.yaml" not in files:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="report-base-"))
    tree = workdir / "tree"
    try:
        _git("worktree", "add", "--detach", "--quiet", str(tree), commit)
        path = os.pathsep.join((str(tree), str(tree / "components")))
        env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "PROJECT": ""}
        done = subprocess.run(
            [sys.executable, "-c", _DUMP_SCRIPT, stack],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise BaseRefError(f"synthesizing stack {stack!r} at {ref} ({commit[:10]}) failed:\n{tail}")
        payload = next(
            (ln[len(_MARKER) :] for ln in done.stdout.splitlines() if ln.startswith(_MARKER)), None
        )
        if payload is None:
            raise BaseRefError(f"synthesizing stack {stack!r} at {ref} printed no resource record")
        return synthesis_from_json(json.loads(payload))
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        )
        subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
