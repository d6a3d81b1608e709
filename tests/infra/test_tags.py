"""Every taggable resource of every stack carries project, stack, component and managed-by."""

from __future__ import annotations

import importlib
import inspect
import keyword
from functools import cache

import pytest

from tests.conftest import SynthFn
from toolchain.project import stack_names

REQUIRED_TAGS = ("project", "stack", "component", "managed-by")


@cache
def is_taggable(type_token: str) -> bool:
    """Whether the pulumi_aws resource class for this token accepts `tags` (read from the SDK)."""
    package, module_path, class_name = type_token.split(":")
    if package != "aws":
        return False
    module_name = module_path.split("/")[0]
    if keyword.iskeyword(module_name):  # `lambda` is `pulumi_aws.lambda_` in Python
        module_name += "_"
    module = importlib.import_module(f"pulumi_aws.{module_name}")
    resource_class = getattr(module, class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_taggability_is_read_from_the_sdk() -> None:
    assert is_taggable("aws:ec2/vpc:Vpc")
    assert not is_taggable("aws:ec2/route:Route")
    assert is_taggable("aws:lambda/function:Function")


@pytest.mark.parametrize("stack", stack_names())
def test_every_taggable_resource_is_tagged(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    checked = 0
    for resource in s.cloud_resources:
        if not is_taggable(resource.type):
            continue
        tags = s.effective_tags(resource)
        missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
        assert not missing, f"{resource.type} {resource.name} lacks tags {missing}"
        assert tags["project"] == "crowdfunding" and tags["stack"] == stack and tags["managed-by"] == "pulumi"
        component = s.component_of(resource)
        assert component is not None and tags["component"] == component.name
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("stack", stack_names())
def test_every_resource_uses_the_stacks_tagged_provider(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    # Only AWS resources live in the account; a docker image is built locally and pushed (no tags).
    untagged = [
        r.name for r in s.cloud_resources if r.type.startswith("aws:") and not s.provider_default_tags(r)
    ]
    assert untagged == []
    assert {r.type.split(":")[0] for r in s.cloud_resources} <= {"aws", "docker"}
