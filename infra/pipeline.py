"""The delivery layer: the API service ships through a `ContainerPipeline` when `pipelineEnabled`.

Pushes to `pipelineBranch` of `pipelineRepository` (read through the CodeConnections connection
`pipelineConnectionArn`) run `buildspec.yml` in CodeBuild — `make test`, the image from
`app/Dockerfile` pushed to the API's ECR repository tagged with the commit — and deploy it to
the API's ECS service; prod waits for a manual approval first. Failed runs (and approvals
waiting) go to the ops-alerts topic. Everything the pipeline touches comes from the
`WebService` the API layer declared, so nothing about the service is written down twice.

One owner of the running image: with the pipeline on, the API service is declared with
`deployed_by_pipeline` (infra/api_service.py), so `pulumi up` and `pulumi refresh` leave the
pipeline's revision running instead of rolling back to the deployer's working tree.
"""

from __future__ import annotations

import pulumi
from awsblocks.delivery.container_pipeline import BuildArchitecture, ContainerPipeline, ContainerPipelineArgs
from awsblocks.web.web_service import WebService

from infra.api_service import API_NAME
from infra.config import PROJECT, ConfigError, StackConfig

PIPELINE_NAME = "api-delivery"
API_CONTAINER_NAME = API_NAME
"""`WebService` names its task definition's one container after the service."""
API_BUILD_ARCHITECTURE: BuildArchitecture = "X86_64"
"""The API runs on WebService's default CPU architecture; the build must produce the same."""


def pipeline_problems(cfg: StackConfig) -> list[str]:
    """Config combinations the delivery layer refuses (checked before anything is declared)."""
    if not cfg.pipeline_enabled:
        return []
    problems: list[str] = []
    if not cfg.pipeline_connection_arn:
        problems.append(
            f"{PROJECT}:pipelineConnectionArn: required when pipelineEnabled is true; allowed: the ARN of "
            "a CodeConnections connection to the repository's host"
        )
    if not cfg.pipeline_repository:
        problems.append(
            f"{PROJECT}:pipelineRepository: required when pipelineEnabled is true; allowed: 'owner/name'"
        )
    if cfg.is_prod and not cfg.pipeline_approval:
        problems.append(
            f"{PROJECT}:pipelineApproval: false on a prod stack; allowed: true (a person approves every "
            "production deployment)"
        )
    return problems


def declare_pipeline(
    cfg: StackConfig,
    api: WebService,
    *,
    kms_key_arn: pulumi.Input[str],
    alert_topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> ContainerPipeline | None:
    """The API's delivery pipeline, or None when the stack does not enable one."""
    if problems := pipeline_problems(cfg):
        raise ConfigError(cfg.stack, problems)
    if not cfg.pipeline_enabled:
        return None
    pipeline = ContainerPipeline(
        PIPELINE_NAME,
        ContainerPipelineArgs(
            name_prefix=cfg.name_prefix,
            connection_arn=cfg.pipeline_connection_arn,
            repository=cfg.pipeline_repository,
            branch=cfg.pipeline_branch,
            cluster_name=api.cluster_name,
            service_name=api.service_name,
            container_name=API_CONTAINER_NAME,
            image_repository_url=api.repository_url,
            pass_role_arns=[api.task_role_arn, api.execution_role_arn],
            require_approval=cfg.pipeline_approval,
            alert_topic_arn=alert_topic_arn,
            kms_key_arn=kms_key_arn,
            build_architecture=API_BUILD_ARCHITECTURE,
            log_retention_days=cfg.log_retention_days,
            deletion_protection=cfg.deletion_protection,
        ),
        opts=opts,
    )
    pulumi.export("apiPipelineName", pipeline.pipeline_name)
    return pipeline
