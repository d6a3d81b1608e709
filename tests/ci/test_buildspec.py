"""buildspec.yml: it parses, runs the phases the pipeline relies on, and calls only what exists."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from awsblocks.delivery.container_pipeline import (
    BUILD_ENVIRONMENT,
    IMAGE_DEFINITIONS_FILE,
    ContainerPipelineArgs,
)

from infra.api_service import DOCKERFILE
from tests.ci.helpers import make_calls, make_targets
from toolchain.project import REPO_ROOT

BUILDSPEC = REPO_ROOT / ContainerPipelineArgs.buildspec
PHASES = ("install", "pre_build", "build", "post_build")
CODEBUILD_PROVIDED = {"CODEBUILD_RESOLVED_SOURCE_VERSION", "CODEBUILD_BUILD_SUCCEEDING"}
_VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")
_ASSIGNED = re.compile(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=")


def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(BUILDSPEC.read_text()))


def commands(phase: str) -> list[str]:
    return [str(c) for c in spec()["phases"][phase]["commands"]]


def all_commands() -> str:
    return "\n".join(c for phase in PHASES for c in commands(phase))


def test_it_parses_with_the_four_phases_in_order() -> None:
    document = spec()
    assert str(document["version"]) == "0.2"
    assert tuple(document["phases"]) == PHASES
    assert document["phases"]["install"]["runtime-versions"] == {"python": 3.11}
    for phase in ("install", "pre_build", "build"):
        assert document["phases"][phase]["on-failure"] == "ABORT", f"{phase} failing must stop the build"


def test_it_installs_then_tests_before_building() -> None:
    assert make_calls("\n".join(commands("install"))) == ["install"]
    assert make_calls("\n".join(commands("pre_build"))) == ["test"]
    assert commands("pre_build")[0] == "make test", "nothing is built or pushed from untested code"


def test_every_make_target_it_calls_exists() -> None:
    called = make_calls(all_commands())
    assert called, "the buildspec calls make"
    assert set(called) <= make_targets()


def test_it_builds_app_dockerfile_from_the_repository_root_tagged_with_the_commit() -> None:
    build = "\n".join(commands("build"))
    assert f'docker build -f {DOCKERFILE} -t "$REPO_URI:$IMAGE_TAG" .' in build
    assert (REPO_ROOT / DOCKERFILE).is_file()
    assert 'IMAGE_TAG="$CODEBUILD_RESOLVED_SOURCE_VERSION"' in commands("pre_build")
    login = next(c for c in commands("pre_build") if "get-login-password" in c)
    assert login.startswith("aws ecr get-login-password") and "--password-stdin" in login
    assert any('docker push "$REPO_URI:$IMAGE_TAG"' in c for c in commands("post_build"))


def test_it_uses_exactly_the_environment_the_pipeline_sets() -> None:
    text = all_commands()
    assigned = set(_ASSIGNED.findall(text)) | set(spec()["env"]["variables"])
    used = set(_VARIABLE.findall(text)) - assigned - CODEBUILD_PROVIDED
    assert used == set(BUILD_ENVIRONMENT)


def test_the_deploy_artifact_is_the_image_definitions_file() -> None:
    assert spec()["artifacts"] == {"files": [IMAGE_DEFINITIONS_FILE]}


@pytest.mark.parametrize("exists", [False, True])
def test_post_build_writes_image_definitions_the_ecs_action_reads(tmp_path: Path, exists: bool) -> None:
    """Run post_build's own commands with `docker` stubbed: the file names the container and image."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text('#!/bin/bash\necho "$@" >> "$DOCKER_LOG"\n')
    docker.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DOCKER_LOG": str(tmp_path / "docker.log"),
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CONTAINER_NAME": "api",
        "REPO_URI": "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/api-repo",
        "IMAGE_TAG": "0123abcd",
        "IMAGE_EXISTS": str(exists).lower(),
    }
    script = "set -e\n" + "\n".join(commands("post_build"))
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True)
    definitions = json.loads((tmp_path / IMAGE_DEFINITIONS_FILE).read_text())
    assert definitions == [{"name": "api", "imageUri": f"{env['REPO_URI']}:0123abcd"}]
    log = tmp_path / "docker.log"
    pushed = log.read_text().splitlines() if log.exists() else []
    assert pushed == ([] if exists else [f"push {env['REPO_URI']}:0123abcd"]), "an existing tag is not pushed"


def test_post_build_refuses_to_publish_after_a_failed_build(tmp_path: Path) -> None:
    script = "set -e\n" + "\n".join(commands("post_build"))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CODEBUILD_BUILD_SUCCEEDING": "0"},
        capture_output=True,
    )
    assert done.returncode != 0
    assert not (tmp_path / IMAGE_DEFINITIONS_FILE).exists()
