"""The synthesized resource set of every committed stack, against a committed snapshot.

A change that moves code (the library's layout, the toolchain, the function specs) must not change
what a stack deploys: every resource keeps its type, logical name, parent and inputs, or carries
an alias to its old identity so `pulumi up` moves it instead of replacing it. Each resource is
keyed by its identity *before* any alias (`parent key $ type :: name`, as Pulumi builds a URN),
with a hash of its inputs; the test names every resource added, removed or changed.

Package bytes are left out on purpose: a function's or the API's code changes with every bug fix
and is covered by the packaging and image tests. Archives count by their path in the checkout,
uploads get a fixed version id (so code edits do not ripple into the signing jobs' inputs), and
the image's content tag and pushed digest are masked.

After an intended change, regenerate and review the diff: `.venv/bin/python -m tests.infra.test_resource_set`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from awsblocks.testing import DeclaredResource, OfflineMocks, Synthesis

from toolchain.project import REPO_ROOT, synthesize

_CONTENT_TAG = re.compile(r":ctx-[0-9a-f]+")
_IMAGE_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}")
SNAPSHOT_DIR = Path(__file__).resolve().parent / "resource_sets"
STACKS = ("dev", "prod", "local")


class FixedVersionMocks(OfflineMocks):
    """Offline mocks whose uploads all get the same version id (independent of the code's bytes)."""

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            state["versionId"] = "v-snapshot"
        return resource_id, state


def _relative(value: Any) -> Any:
    """Inputs with file assets and archives named by their path inside the checkout."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("fileAsset", "fileArchive"):
            kind, path = next(iter(value.items()))
            resolved = Path(str(path)).resolve()
            inside = resolved.is_relative_to(REPO_ROOT)
            return {kind: str(resolved.relative_to(REPO_ROOT)) if inside else path}
        return {key: _relative(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_relative(inner) for inner in value]
    if isinstance(value, str):
        return _IMAGE_DIGEST.sub("@sha256:<digest>", _CONTENT_TAG.sub(":ctx-<content>", value))
    return value


def _identity(resource: DeclaredResource, by_urn: dict[str, DeclaredResource], memo: dict[str, str]) -> str:
    """`parent identity $ type :: name`, with the type and name an alias points back to."""
    if resource.urn in memo:
        return memo[resource.urn]
    old_type, old_name = resource.type, resource.name
    for alias in resource.aliases:
        old_type = alias.get("type") or old_type
        old_name = alias.get("name") or old_name
    parent = by_urn.get(resource.parent or "")
    prefix = f"{_identity(parent, by_urn, memo)} $ " if parent is not None else ""
    memo[resource.urn] = f"{prefix}{old_type}::{old_name}"
    return memo[resource.urn]


def resource_set(synthesis: Synthesis) -> dict[str, str]:
    """Identity → a short hash of the resource's canonical inputs (and its provider's identity)."""
    by_urn = synthesis.by_urn
    memo: dict[str, str] = {}
    found: dict[str, str] = {}
    for resource in synthesis.resources:
        provider = by_urn.get(resource.provider or "")
        canonical = json.dumps(
            {
                "inputs": _relative(resource.inputs),
                "provider": _identity(provider, by_urn, memo) if provider else None,
            },
            sort_keys=True,
            default=str,
        )
        found[_identity(resource, by_urn, memo)] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return found


def synthesize_set(stack: str) -> dict[str, str]:
    synthesis = synthesize(stack, mocks=FixedVersionMocks(_region(stack)))
    return resource_set(synthesis)


def _region(stack: str) -> str:
    from toolchain.project import read_stack_config

    return read_stack_config(stack).get("aws:region", "ap-northeast-2")


def _snapshot(stack: str) -> Path:
    return SNAPSHOT_DIR / f"{stack}.json"


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_deploys_exactly_its_committed_resource_set(stack: str) -> None:
    expected: dict[str, str] = json.loads(_snapshot(stack).read_text())
    actual = synthesize_set(stack)
    added = sorted(set(actual) - set(expected))
    removed = sorted(set(expected) - set(actual))
    changed = sorted(key for key in set(actual) & set(expected) if actual[key] != expected[key])
    problems = [f"added:   {key}" for key in added]
    problems += [f"removed: {key}" for key in removed]
    problems += [f"changed: {key}" for key in changed]
    assert not problems, (
        f"{stack}: the resource set differs from {_snapshot(stack).relative_to(REPO_ROOT)} "
        f"({len(added)} added, {len(removed)} removed, {len(changed)} changed). A rename needs an "
        "alias to the old type or parent; an intended change: see `make report STACK="
        f"{stack} BASE=main` for the inputs, then regenerate with "
        "`.venv/bin/python -m tests.infra.test_resource_set`.\n" + "\n".join(problems[:80])
    )


def _write_snapshots(stacks: tuple[str, ...]) -> None:
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    for stack in stacks:
        found = synthesize_set(stack)
        _snapshot(stack).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"{stack}: {len(found)} resources -> {_snapshot(stack).relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    _write_snapshots(tuple(sys.argv[1:]) or STACKS)
