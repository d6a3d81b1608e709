"""The delivery layer of the stack: the API's pipeline per stack, its wiring to the service, config checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsblocks.testing import DeclaredResource, Synthesis

from infra.config import ConfigError, parse
from infra.pipeline import pipeline_problems
from tests.conftest import SynthFn
from toolchain.project import read_stack_config, stack_names

PIPELINE = "aws:codepipeline/pipeline:Pipeline"
NOTIFICATION_RULE = "aws:codestarnotifications/notificationRule:NotificationRule"
EXPECTED = {"dev": ["Source", "Build", "Deploy"], "prod": ["Source", "Build", "Approval", "Deploy"]}
CONNECTION = (
    "arn:aws:codeconnections:ap-northeast-2:123456789012:connection/0b7e3c52-5a1d-4f0e-9c6b-2d8e4f1a7b93"
)
PIPELINE_CONFIG = {
    "pipelineEnabled": "true",
    "pipelineConnectionArn": CONNECTION,
    "pipelineRepository": "shop-org/shop",
    "pipelineBranch": "main",
}
"""The user's own connection and repository (the committed stacks leave the pipeline off)."""
PIPELINE_ON = {f"crowdfunding:{k}": v for k, v in PIPELINE_CONFIG.items()}


def piped(synth: SynthFn, stack: str) -> Synthesis:
    """The stack as a user who configured the pipeline deploys it."""
    return synth(stack, overrides=PIPELINE_ON)


def pipeline_of(s: Synthesis) -> DeclaredResource:
    (pipeline,) = s.of_type(PIPELINE)
    return pipeline


def action(s: Synthesis, stage: str) -> dict[str, Any]:
    (found,) = next(st for st in pipeline_of(s).inputs["stages"] if st["name"] == stage)["actions"]
    return dict(found)


def statements(resource: DeclaredResource) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in json.loads(resource.inputs["policy"])["Statement"]}


@pytest.mark.parametrize("stack", stack_names())
def test_the_committed_stacks_deploy_without_a_pipeline_until_one_is_configured(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    assert s.of_type(PIPELINE) == [] and s.of_type(NOTIFICATION_RULE) == []
    assert "apiPipelineName" not in s.stack_outputs
    if stack in EXPECTED:
        configured = piped(synth, stack)
        assert [st["name"] for st in pipeline_of(configured).inputs["stages"]] == EXPECTED[stack]
        assert "apiPipelineName" in configured.stack_outputs


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_the_pipeline_deploys_the_api_service_it_builds_for(synth: SynthFn, stack: str) -> None:
    s = piped(synth, stack)
    (service,) = s.of_type("aws:ecs/service:Service")
    (cluster,) = s.of_type("aws:ecs/cluster:Cluster")
    (task,) = s.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (repository,) = s.of_type("aws:ecr/repository:Repository")
    (container,) = json.loads(task.inputs["containerDefinitions"])

    deploy = action(s, "Deploy")["configuration"]
    assert (deploy["ClusterName"], deploy["ServiceName"]) == (cluster.state["name"], service.state["name"])
    (project,) = s.of_type("aws:codebuild/project:Project")
    env = {v["name"]: v["value"] for v in project.inputs["environment"]["environmentVariables"]}
    assert env["CONTAINER_NAME"] == container["name"]
    assert env["REPO_URI"] == repository.state["repositoryUrl"]
    assert container["image"].split("@")[0] == env["REPO_URI"], "the pipeline pushes where the task pulls"

    granted = statements(s.named("api-delivery-pipeline-policy"))
    assert granted["PassServiceRoles"]["Resource"] == [
        task.inputs["taskRoleArn"],
        task.inputs["executionRoleArn"],
    ]
    assert granted["DeployService"]["Resource"] == [
        f"arn:aws:ecs:ap-northeast-2:123456789012:service/{cluster.state['name']}/{service.state['name']}"
    ]
    pushed = statements(s.named("api-delivery-build-policy"))["ECRPushImage"]["Resource"]
    assert pushed == [f"arn:aws:ecr:ap-northeast-2:123456789012:repository/{repository.state['name']}"]


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_pipeline_source_comes_from_the_stack_config(synth: SynthFn, stack: str) -> None:
    source = action(piped(synth, stack), "Source")["configuration"]
    assert source["ConnectionArn"] == CONNECTION
    assert source["FullRepositoryId"] == "shop-org/shop"
    assert source["BranchName"] == "main"


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_failures_reach_ops_alerts_which_lets_the_notification_service_publish(
    synth: SynthFn, stack: str
) -> None:
    s = piped(synth, stack)
    topic = s.named("ops-alerts-topic")
    (rule,) = s.of_type(NOTIFICATION_RULE)
    assert rule.inputs["targets"] == [{"address": topic.state["arn"], "type": "SNS"}]
    assert rule.inputs["resource"] == pipeline_of(s).state["arn"]
    assert "codepipeline-pipeline-pipeline-execution-failed" in rule.inputs["eventTypeIds"]

    publishers = statements(s.named("ops-alerts-policy"))["ServicesPublishForThisAccount"]
    assert "codestar-notifications.amazonaws.com" in publishers["Principal"]["Service"]
    (key,) = [k for k in s.of_type("aws:kms/key:Key") if k.state["arn"] == topic.inputs["kmsMasterKeyId"]]
    users = statements(key)["CodeStarNotificationsPublishesThroughSns"]
    assert users["Principal"]["Service"] == ["codestar-notifications.amazonaws.com"]
    assert users["Condition"] == {"StringEquals": {"kms:ViaService": "sns.ap-northeast-2.amazonaws.com"}}


def test_without_a_pipeline_no_key_or_topic_trusts_the_notification_service(synth: SynthFn) -> None:
    s = synth("local")
    for resource in [*s.of_type("aws:kms/key:Key"), *s.of_type("aws:sns/topicPolicy:TopicPolicy")]:
        assert "codestar-notifications" not in resource.inputs["policy"], resource.name


def test_approval_waits_and_notifies_on_prod(synth: SynthFn) -> None:
    s = piped(synth, "prod")
    assert action(s, "Approval")["provider"] == "Manual"
    (rule,) = s.of_type(NOTIFICATION_RULE)
    assert "codepipeline-pipeline-manual-approval-needed" in rule.inputs["eventTypeIds"]


# --- config -------------------------------------------------------------------------------


def raw_config(stack: str, **overrides: str) -> dict[str, str]:
    """The stack file (with offline stand-ins) and the pipeline configured, then `overrides`."""
    raw = read_stack_config(stack)
    raw.update({f"crowdfunding:{k}": v for k, v in {**PIPELINE_CONFIG, **overrides}.items()})
    return raw


def test_an_enabled_pipeline_needs_a_connection_and_a_repository() -> None:
    cfg = parse("dev", raw_config("dev", pipelineConnectionArn="", pipelineRepository=""))
    problems = pipeline_problems(cfg)
    assert len(problems) == 2
    assert problems[0].startswith("crowdfunding:pipelineConnectionArn: required when pipelineEnabled")
    assert problems[1].startswith("crowdfunding:pipelineRepository: required when pipelineEnabled")
    assert pipeline_problems(parse("local", read_stack_config("local"))) == []


def test_prod_deployments_need_an_approval() -> None:
    cfg = parse("prod", raw_config("prod", pipelineApproval="false"))
    (problem,) = pipeline_problems(cfg)
    assert problem.startswith("crowdfunding:pipelineApproval: false on a prod stack; allowed: true")


def test_the_program_stops_before_declaring_a_half_configured_pipeline(synth: SynthFn) -> None:
    with pytest.raises(Exception, match="pipelineRepository: required when pipelineEnabled"):
        synth("dev", overrides={**PIPELINE_ON, "crowdfunding:pipelineRepository": None})


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("pipelineConnectionArn", "arn:aws:codecommit:ap-northeast-2:123456789012:repo", "codeconnections"),
        ("pipelineRepository", "crowdfunding", "owner/name"),
        ("pipelineBranch", "main/", "a git branch name"),
    ],
)
def test_bad_pipeline_values_name_the_key(key: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse("dev", raw_config("dev", **{key: value}))
    (problem,) = raised.value.problems
    assert problem.startswith(f"crowdfunding:{key}: {value!r} is not allowed; allowed: ")
    assert allowed in problem
