"""The README's generated sections match the program, and it names the interface we keep."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.config import KEYS, PROJECT, parse
from toolchain.docs import PULUMI_YAML, README, render, render_pulumi_yaml
from toolchain.project import REPO_ROOT, Project, ProjectConfigError


def test_readme_generated_sections_are_current() -> None:
    text = README.read_text()
    assert render(text) == text, "README.md is out of date: run `make docs`"


def test_readme_make_targets_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    mentioned = set(re.findall(r"(?:^|`)make ([a-z-]+)", README.read_text(), re.MULTILINE))
    assert {"install", "test", "run", "preview"} <= mentioned
    assert mentioned <= targets, f"README mentions targets the Makefile lacks: {mentioned - targets}"


def test_pulumi_yaml_declares_every_key_the_program_reads() -> None:
    text = PULUMI_YAML.read_text()
    assert render_pulumi_yaml(text) == text, "Pulumi.yaml's config schema is out of date: run `make docs`"
    declared = Project(REPO_ROOT).config_schema
    assert set(declared) == {key.name for key in KEYS if key.namespace == PROJECT}
    assert declared["azCount"] == {
        "type": "integer",
        "description": declared["azCount"]["description"],
        "default": 2,
    }
    assert "default" not in declared["natStrategy"], "a required key has no default: the CLI asks for it"
    assert declared["logRetentionDays"]["default"] == "", "prod's default differs: unset, not 30"


def _stack_file(tmp_path: Path, config: dict[str, object]) -> Project:
    import shutil

    import yaml

    shutil.copy(PULUMI_YAML, tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.try.yaml").write_text(yaml.safe_dump({"config": config}))
    return Project(tmp_path)


def test_a_typo_in_a_stack_file_is_refused_as_the_cli_refuses_it(tmp_path: Path) -> None:
    project = _stack_file(
        tmp_path,
        {"aws:region": "ap-northeast-2", "crowdfunding:natStrategy": "none", "crowdfunding:azCont": 3},
    )
    with pytest.raises(ProjectConfigError, match="'crowdfunding:azCont' which is not defined by the project"):
        project.read_stack_config("try")


def test_a_stack_without_a_required_key_or_with_a_wrong_type_is_refused(tmp_path: Path) -> None:
    project = _stack_file(tmp_path, {"aws:region": "ap-northeast-2", "crowdfunding:azCount": "two"})
    with pytest.raises(ProjectConfigError) as refused:
        project.read_stack_config("try")
    assert "missing configuration value 'crowdfunding:natStrategy'" in str(refused.value)
    assert "'crowdfunding:azCount' must be of type 'integer'" in str(refused.value)


def test_the_program_gets_the_schema_defaults_and_reads_them_as_before(tmp_path: Path) -> None:
    project = _stack_file(tmp_path, {"aws:region": "ap-northeast-2", "crowdfunding:natStrategy": "none"})
    raw = project.read_stack_config("try")
    assert raw["crowdfunding:azCount"] == "2" and raw["crowdfunding:logRetentionDays"] == ""
    prod = parse("prod", {**raw, "crowdfunding:deletionProtection": "true", **_prod_needs()})
    assert prod.log_retention_days == 365, "an unset retention on prod is a year, as before the schema"
    assert parse("dev", raw).log_retention_days == 30


def _prod_needs() -> dict[str, str]:
    from toolchain.project import stand_ins

    return stand_ins({"crowdfunding:environment": "prod"})
