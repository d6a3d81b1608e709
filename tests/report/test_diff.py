"""Diff mode: resources added/removed/changed by type and the cost delta per line item."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SynthFn
from toolchain.project import REPO_ROOT
from toolchain.report import build_report
from toolchain.report.__main__ import main
from toolchain.report.diff import diff_reports, render_diff
from toolchain.report.estimate import Load

LOAD = Load(1_000_000, 10_000)


def test_a_second_nat_gateway_shows_its_resources_and_cost(synth: SynthFn) -> None:
    base = build_report(synth("dev", overrides={"crowdfunding:natStrategy": "single"}), LOAD)
    head = build_report(synth("dev", overrides={"crowdfunding:natStrategy": "per_az"}), LOAD)
    diff = diff_reports(base, head, "single NAT")
    assert diff.by_type["aws:ec2:NatGateway"] == {"added": 1, "removed": 0, "changed": 0}
    assert diff.by_type["aws:ec2:Eip"] == {"added": 1, "removed": 0, "changed": 0}
    # the second private route now points at the new gateway
    assert any(c.type == "aws:ec2/route:Route" and "natGatewayId" in c.keys for c in diff.changed)
    deltas = {c.item: c for c in diff.costs}
    # one more NAT gateway: 730 h x $0.059 = $43.07; its Elastic IP: 730 h x $0.005 = $3.65
    assert round(deltas["NAT gateway hours"].idle, 2) == 43.07
    assert round(deltas["Public IPv4 addresses"].idle, 2) == 3.65
    assert round(diff.idle_delta, 2) == 46.72
    text = "\n".join(render_diff(diff))
    assert "| `aws:ec2:NatGateway` | 1 | 0 | 0 |" in text
    assert "| NAT gateway hours | $43.07 | $86.14 | +$43.07 |" in text


def test_identical_stacks_have_no_diff(synth: SynthFn) -> None:
    report = build_report(synth("dev"), LOAD)
    diff = diff_reports(report, report, "itself")
    assert (diff.added, diff.removed, diff.changed, diff.costs) == ([], [], [], [])


def test_a_stack_missing_at_the_base_is_all_added(synth: SynthFn) -> None:
    head = build_report(synth("dev"), LOAD)
    diff = diff_reports(None, head, "before")
    assert diff.base_missing
    assert len(diff.added) == len(head.synthesis.cloud_resources)


def _worktrees() -> str:
    return subprocess.run(
        ["git", "worktree", "list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_base_head_runs_through_a_git_worktree(capsys: pytest.CaptureFixture[str]) -> None:
    before = _worktrees()
    assert main(["dev", "--base", "HEAD", "--json-only"]) == 0
    document = json.loads(capsys.readouterr().out)
    diff = document["diff"]
    assert diff["base"] == "HEAD" and not diff["baseMissing"]
    head_urns = {r["urn"] for r in document["resources"]}
    # whatever the working tree changed, the base side was synthesized: the sets are consistent
    assert set(diff["added"]) <= head_urns
    assert not set(diff["removed"]) & head_urns
    assert _worktrees() == before, "the temporary worktree was not removed"


def test_an_unknown_base_ref_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--base", "no-such-ref-anywhere", "--json-only"]) == 1
    assert "no-such-ref-anywhere" in capsys.readouterr().err


def test_a_package_built_in_another_checkout_is_not_a_change(tmp_path: Path) -> None:
    """Assets compare by their bytes, as Pulumi compares them, not by the checkout's path."""
    from toolchain.report.diff import content_addressed

    here, there, other = tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"
    here.write_bytes(b"same package")
    there.write_bytes(b"same package")
    other.write_bytes(b"another package")
    inputs = {"source": {"fileAsset": str(here)}, "key": "k", "layers": [{"fileArchive": str(here)}]}
    moved = {"source": {"fileAsset": str(there)}, "key": "k", "layers": [{"fileArchive": str(there)}]}
    assert content_addressed(inputs) == content_addressed(moved)
    assert content_addressed(inputs) != content_addressed({**inputs, "source": {"fileAsset": str(other)}})
