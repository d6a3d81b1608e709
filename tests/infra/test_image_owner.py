"""One owner of the running image per stack: the program, or the delivery pipeline when it deploys.

`pulumi up` pins the ECS service to the program's task definition; a pipeline registers newer
revisions. With both owning it, a later `pulumi up` or refresh rolls production back to the image
built from the deployer's working tree. When the pipeline deploys, the service ignores changes to
its task definition. The mocks do not record resource options, so a spy captures the options the
component passes to `aws.ecs.Service`.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from awsblocks.web import web_service
from awsblocks.web.web_service import WebService, WebServiceArgs, service_ignored_changes

from tests.conftest import TEST_REGION, SynthFn

CONNECTION = (
    f"arn:aws:codeconnections:{TEST_REGION}:123456789012:connection/0b7e3c52-5a1d-4f0e-9c6b-2d8e4f1a7b93"
)
PIPELINE_ON = {
    "crowdfunding:pipelineEnabled": True,
    "crowdfunding:pipelineConnectionArn": CONNECTION,
    "crowdfunding:pipelineRepository": "shop-org/shop",
}


@pytest.fixture
def service_options(monkeypatch: pytest.MonkeyPatch) -> list[pulumi.ResourceOptions]:
    """Every ResourceOptions given to an ECS service while the spy is installed."""
    seen: list[pulumi.ResourceOptions] = []
    real = aws.ecs.Service

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(
            self, name: str, *args: Any, opts: pulumi.ResourceOptions | None = None, **kw: Any
        ) -> None:
            seen.append(opts or pulumi.ResourceOptions())
            super().__init__(name, *args, opts=opts, **kw)

    monkeypatch.setattr(web_service.aws.ecs, "Service", Spy)
    return seen


def shop_args(**overrides: Any) -> WebServiceArgs:
    return WebServiceArgs(
        vpc_id="vpc-0123",
        public_subnet_ids=["subnet-pub-a", "subnet-pub-b"],
        private_subnet_ids=["subnet-priv-a"],
        image_uri=f"123456789012.dkr.ecr.{TEST_REGION}.amazonaws.com/shop:3f9a0c1d",
        **overrides,
    )


def test_the_program_owns_the_running_revision_by_default() -> None:
    assert service_ignored_changes(shop_args()) == ["desiredCount"]
    assert service_ignored_changes(shop_args(deployed_by_pipeline=True)) == ["desiredCount", "taskDefinition"]


@pytest.mark.parametrize(
    ("pipeline", "ignored"), [(False, ["desiredCount"]), (True, ["desiredCount", "taskDefinition"])]
)
def test_the_component_passes_the_owner_to_the_service(
    synth: SynthFn, service_options: list[pulumi.ResourceOptions], pipeline: bool, ignored: list[str]
) -> None:
    synth(program=lambda: WebService("shop", shop_args(deployed_by_pipeline=pipeline)))
    (opts,) = service_options
    assert opts.ignore_changes == ignored


def test_a_stack_with_a_pipeline_leaves_the_running_revision_to_it(
    synth: SynthFn, service_options: list[pulumi.ResourceOptions]
) -> None:
    # A branch of its own: the session caches stacks by overrides, and the spy must see this run.
    synth("dev", overrides={**PIPELINE_ON, "crowdfunding:pipelineBranch": "owner-test"})
    (opts,) = service_options
    assert "taskDefinition" in (opts.ignore_changes or [])


def test_a_stack_without_a_pipeline_keeps_the_program_as_owner(
    synth: SynthFn, service_options: list[pulumi.ResourceOptions]
) -> None:
    synth(
        "local",
        overrides={"crowdfunding:pipelineEnabled": False, "crowdfunding:pipelineBranch": "owner-test"},
    )
    (opts,) = service_options
    assert opts.ignore_changes == ["desiredCount"]
