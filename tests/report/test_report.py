"""The report end to end: sections, files, a broken resource's policy failure, the README picture."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi_aws as aws
import pytest
from awsblocks.testing import short_type

from tests.conftest import SynthFn
from toolchain.docs import README
from toolchain.report import build_report, resources_by_component
from toolchain.report.__main__ import main
from toolchain.report.diagram import mermaid_block
from toolchain.report.estimate import Load
from toolchain.report.render import render_json, render_markdown

LOAD = Load(1_000_000, 10_000)


def _broken() -> None:
    aws.kms.Key("broken-key", description="rotation deliberately off", enable_key_rotation=False)


def test_a_deliberately_broken_resource_shows_as_a_failed_policy(synth: SynthFn) -> None:
    report = build_report(synth(program=_broken), LOAD)
    assert report.policies.available
    failed = report.policies.with_status("failed")
    assert any(f.rule == "kms-key-rotation" and f.resource == "aws:kms:Key broken-key" for f in failed)
    markdown = render_markdown(report)
    failed_section = markdown.split("### Failed", 1)[1].split("###", 1)[0]
    assert "`kms-key-rotation` | aws:kms:Key broken-key |" in failed_section
    assert render_json(report)["policies"]["counts"]["failed"] >= 1


def test_the_dev_report_has_every_section_and_counts_every_resource(synth: SynthFn) -> None:
    synthesis = synth("dev")
    report = build_report(synthesis, LOAD)
    markdown = render_markdown(report)
    for heading in (
        "## Resources by component",
        "## Monthly cost estimate",
        "## Policy findings",
        "## Architecture",
    ):
        assert heading in markdown
    assert "```mermaid\nflowchart LR" in markdown
    counted = sum(sum(types.values()) for types in resources_by_component(synthesis).values())
    assert counted == len(synthesis.cloud_resources)
    assert "Idle cost is dominated by: Application Load Balancer hours" in markdown
    document = render_json(report)
    assert {li["item"] for li in document["cost"]["lines"]} == {li.item for li in report.cost.lines}
    assert {r["type"] for r in document["resources"]} == set(synthesis.count_by_type())
    nat = next(li for li in report.cost.lines if li.item == "EC2 t4g.nano hours")
    assert f"`{short_type('aws:ec2/instance:Instance')}`" in markdown and nat.idle_quantity == 730 * len(
        synthesis.of_type("aws:ec2/instance:Instance")
    )


def test_the_readme_picture_is_the_dev_diagram(synth: SynthFn) -> None:
    from toolchain.report.topology import build_topology

    assert mermaid_block(build_topology(synth("dev"))) in README.read_text()


def test_cli_writes_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--out-dir", str(tmp_path), "--payments", "1234", "--api-requests", "5000"]) == 0
    printed = capsys.readouterr().out
    markdown = (tmp_path / "dev.md").read_text()
    assert printed.strip() == markdown.strip()
    assert "5,000 API requests and 1,234 payments a month" in markdown
    document = json.loads((tmp_path / "dev.json").read_text())
    assert document["load"] == {"apiRequestsPerMonth": 5000, "paymentsPerMonth": 1234}
    assert document["totals"]["idleUsd"] > 0


def test_cli_refuses_unknown_stacks_and_negative_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nowhere"]) == 2
    assert "committed stacks" in capsys.readouterr().err
    assert main(["dev", "--payments", "-5"]) == 2
    assert "--payments -5 is not allowed" in capsys.readouterr().err


def test_prod_states_its_own_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prod", "--json-only"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["load"] == {"apiRequestsPerMonth": 20_000_000, "paymentsPerMonth": 200_000}


def test_without_policies_the_report_says_so(synth: SynthFn, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "policies.adapters", None)
    report = build_report(synth(program=_broken), LOAD)
    assert not report.policies.available
    assert "policies/ not found" in render_markdown(report)
