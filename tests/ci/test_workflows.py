"""GitHub workflows: they parse, call existing make targets and stacks, pin actions, use OIDC."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.helpers import make_calls, make_targets
from toolchain.project import REPO_ROOT, stack_names

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
MAIN = WORKFLOWS / "main.yml"
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
_EXPRESSION = re.compile(r"\$\{\{.*\}\}")
_STORED_KEYS = ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def load(path: Path) -> dict[str, Any]:
    document = dict(yaml.safe_load(path.read_text()))
    # YAML 1.1 reads the bare key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(f"{action}@")]
    return step


def test_both_workflows_exist_and_parse() -> None:
    assert {p.name for p in workflow_files()} >= {"pull-request.yml", "main.yml"}
    for path in workflow_files():
        document = load(path)
        assert document["jobs"], path.name


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_version(path: Path) -> None:
    uses = [str(step["uses"]) for step in steps(load(path)) if "uses" in step]
    assert uses
    assert [u for u in uses if not _PINNED.match(u)] == []


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_make_target_called_exists(path: Path) -> None:
    called = [t for step in steps(load(path)) for t in make_calls(str(step.get("run", "")))]
    assert called
    assert set(called) <= make_targets()


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_no_stored_aws_keys_anywhere(path: Path) -> None:
    text = path.read_text()
    assert [k for k in _STORED_KEYS if k in text] == []


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_literal_stack_name_is_a_committed_stack(path: Path) -> None:
    named = [
        str(step["with"]["stack-name"])
        for step in steps(load(path))
        if "stack-name" in step.get("with", {}) and not _EXPRESSION.search(str(step["with"]["stack-name"]))
    ]
    for job in load(path)["jobs"].values():
        named += [str(e["stack"]) for e in job.get("strategy", {}).get("matrix", {}).get("exclude", [])]
    assert set(named) <= set(stack_names())


def test_pull_requests_run_make_test_first() -> None:
    jobs = load(PULL_REQUEST)["jobs"]
    assert "pull_request" in load(PULL_REQUEST)["on"]
    assert [s["run"] for s in jobs["test"]["steps"] if "run" in s] == ["make test"]
    assert step_using(jobs["test"], "actions/setup-python")["with"]["python-version"] == "3.11"
    assert "test" in jobs["preview"]["needs"]


def test_the_listed_stacks_are_the_committed_ones(tmp_path: Path) -> None:
    """The stack-listing step, run as CI runs it, yields every committed stack."""
    (listing,) = [s for s in load(PULL_REQUEST)["jobs"]["report-stacks"]["steps"] if s.get("id") == "list"]
    output = tmp_path / "github-output"
    subprocess.run(
        ["bash", "-ec", listing["run"]],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output)},
        check=True,
    )
    key, _, value = output.read_text().strip().partition("=")
    assert key == "stacks" and json.loads(value) == stack_names()


def test_preview_comments_one_edited_comment_per_deployable_stack_with_oidc() -> None:
    preview = load(PULL_REQUEST)["jobs"]["preview"]
    assert preview["permissions"] == {"id-token": "write", "contents": "read", "pull-requests": "write"}
    matrix = preview["strategy"]["matrix"]
    assert matrix["stack"] == "${{ fromJSON(needs.report-stacks.outputs.stacks) }}"
    assert matrix["exclude"] == [{"stack": "local"}]
    credentials = step_using(preview, "aws-actions/configure-aws-credentials")["with"]
    assert re.fullmatch(r"\$\{\{ (vars|secrets)\.[A-Z_]+ \}\}", credentials["role-to-assume"])
    pulumi_step = step_using(preview, "pulumi/actions")
    assert pulumi_step["with"] == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "comment-on-pr": True,
        "edit-pr-comment": True,
        "suppress-outputs": True,
        "github-token": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert pulumi_step["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
    names = [s.get("uses", s.get("run")) for s in preview["steps"]]
    assert names.index("make install") < names.index(pulumi_step["uses"]), "the program runs from .venv"


def test_the_report_job_still_posts_its_comment() -> None:
    report = load(PULL_REQUEST)["jobs"]["report"]
    assert step_using(report, "marocchino/sticky-pull-request-comment")["with"]["header"] == (
        "report-${{ matrix.stack }}"
    )


def test_main_tests_then_updates_dev() -> None:
    document = load(MAIN)
    assert document["on"] == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    assert [s["run"] for s in jobs["test"]["steps"] if "run" in s] == ["make test"]
    deploy = jobs["deploy-dev"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    credentials = step_using(deploy, "aws-actions/configure-aws-credentials")["with"]
    assert re.fullmatch(r"\$\{\{ (vars|secrets)\.[A-Z_]+ \}\}", credentials["role-to-assume"])
    pulumi_step = step_using(deploy, "pulumi/actions")
    assert pulumi_step["with"]["command"] == "up"
    assert pulumi_step["with"]["stack-name"] == "dev"
    assert pulumi_step["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
