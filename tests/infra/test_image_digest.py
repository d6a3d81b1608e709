"""The running image is pinned by digest, and pushing the same content twice cannot fail a deploy.

pulumi-docker decides to rebuild from its own context hash (full file modes, its own version),
not from the content tag `WebService` names the build with: a permission-only difference between
checkouts, a provider upgrade or a retried push pushes an existing content tag again. An
IMMUTABLE repository refuses that push and the deploy fails; here the content tags are the one
pattern a push may move, and the task definition runs `<repository>@sha256:…`, so a moved tag
changes nothing that runs.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from awsblocks.testing import DeclaredResource, Synthesis
from awsblocks.web.build_context import context_tag
from awsblocks.web.web_service import CONTENT_TAG_FILTER, WebService, WebServiceArgs

from tests.conftest import TEST_REGION, SynthFn

ACCOUNT = "123456789012"
PREBUILT = f"{ACCOUNT}.dkr.ecr.{TEST_REGION}.amazonaws.com/shop:3f9a0c1d2e4b"
DIGEST = "@sha256:"


class Registry:
    """ECR's tag-mutability rule for one repository: a push naming a tag that already points at
    another manifest is refused (ImageTagAlreadyExistsException) unless the tag may move."""

    def __init__(self, repository: DeclaredResource) -> None:
        self.mutability = str(repository.inputs["imageTagMutability"])
        self.filters = [
            f["filter"] for f in repository.inputs.get("imageTagMutabilityExclusionFilters") or []
        ]
        self.tags: dict[str, str] = {}

    def _mutable(self, tag: str) -> bool:
        excluded = any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.filters)
        if self.mutability == "MUTABLE":
            return True
        if self.mutability == "IMMUTABLE_WITH_EXCLUSION":
            return excluded
        if self.mutability == "MUTABLE_WITH_EXCLUSION":
            return not excluded
        return False

    def push(self, tag: str, manifest: str) -> None:
        if tag in self.tags and self.tags[tag] != manifest and not self._mutable(tag):
            raise RuntimeError(f"ImageTagAlreadyExistsException: {tag}")
        self.tags[tag] = manifest


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY app.py /srv/\n")
    (tmp_path / "app.py").write_text("print('orders')\n")
    return tmp_path


def shop(synth: SynthFn, **overrides: Any) -> Synthesis:
    args: dict[str, Any] = {
        "vpc_id": "vpc-0123",
        "public_subnet_ids": ["subnet-pub-a", "subnet-pub-b"],
        "private_subnet_ids": ["subnet-priv-a", "subnet-priv-b"],
        **overrides,
    }
    return synth(program=lambda: WebService("shop", WebServiceArgs(**args)))


def running_image(s: Synthesis) -> str:
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    return str(container["image"])


def test_the_task_definition_runs_the_pushed_digest_not_the_tag(synth: SynthFn, context: Path) -> None:
    s = shop(synth, build_context=str(context))
    (image,) = s.of_type("docker:index/image:Image")
    repository = image.inputs["imageName"].rsplit(":", 1)[0]
    assert running_image(s) == image.state["repoDigest"]
    assert running_image(s).startswith(repository + DIGEST)
    assert ":" + context_tag(context, context / "Dockerfile", platform="linux/amd64") not in running_image(s)
    component = next(r for r in s.resources if r.type == "awsblocks:index:WebService")
    assert component.outputs["image_uri"] == running_image(s)


def test_pushing_the_same_content_tag_twice_cannot_fail_the_deploy(synth: SynthFn, context: Path) -> None:
    s = shop(synth, build_context=str(context))
    (repository,) = s.of_type("aws:ecr/repository:Repository")
    (image,) = s.of_type("docker:index/image:Image")
    tag = image.inputs["imageName"].rsplit(":", 1)[1]
    assert fnmatch.fnmatchcase(tag, CONTENT_TAG_FILTER)

    registry = Registry(repository)
    registry.push(tag, "sha256:first-build")
    # pulumi-docker rebuilds the unchanged context (a mode bit, a provider upgrade, a retry): the
    # same tag comes back with another manifest, and the push goes through.
    registry.push(tag, "sha256:rebuilt-same-content")
    assert registry.tags[tag] == "sha256:rebuilt-same-content"
    # Every other tag stays immutable: a pipeline's commit tag cannot be overwritten.
    registry.push("3f9a0c1d2e4b", "sha256:commit-build")
    with pytest.raises(RuntimeError, match="ImageTagAlreadyExistsException"):
        registry.push("3f9a0c1d2e4b", "sha256:other")

    # The repository as it was (IMMUTABLE, no exclusion) fails that second push.
    immutable = DeclaredResource(
        "", repository.type, repository.name, {"imageTagMutability": "IMMUTABLE"}, None, None, True
    )
    old = Registry(immutable)
    old.push(tag, "sha256:first-build")
    with pytest.raises(RuntimeError, match="ImageTagAlreadyExistsException"):
        old.push(tag, "sha256:rebuilt-same-content")


def test_the_content_tag_prefix_and_the_repository_filter_agree() -> None:
    assert CONTENT_TAG_FILTER == "ctx-*"
    assert fnmatch.fnmatchcase("ctx-" + "0" * 24, CONTENT_TAG_FILTER)
    assert not fnmatch.fnmatchcase("3f9a0c1d2e4b", CONTENT_TAG_FILTER)


def test_a_prebuilt_image_runs_as_given(synth: SynthFn) -> None:
    s = shop(synth, image_uri=PREBUILT)
    assert s.of_type("docker:index/image:Image") == []
    assert running_image(s) == PREBUILT


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stacks_api_runs_its_image_by_digest(synth: SynthFn, stack: str) -> None:
    s = synth(stack, overrides={"crowdfunding:apiImageUri": ""})
    (image,) = s.of_type("docker:index/image:Image")
    assert running_image(s) == image.state["repoDigest"] and DIGEST in running_image(s)
    assert s.stack_outputs["apiImage"] == running_image(s)
