"""`ContainerPipeline`: source → build → (approval) → deploy for one ECS service, least privilege.

What a team gets from one declaration:

- **Pipeline** (CodePipeline V2): **Source** from a GitHub (or other) repository and branch
  through a CodeConnections (CodeStar) connection, as a full clone so the build sees git history;
  **Build** in CodeBuild; an optional manual **Approval**; **Deploy** with the ECS standard
  action, which registers a new revision of the service's task definition with the image named
  in `imagedefinitions.json` and updates the service (its circuit breaker rolls a bad image back).
- **Build project**: a CodeBuild-managed image, the repository's own buildspec, logs to its own
  KMS-encrypted log group with retention, artifacts encrypted with the CMK. The environment holds
  only plain, non-secret values (image repository URI, container name, account, region); the
  build authenticates to ECR with its role, never with stored credentials.
- **Artifact bucket**: versioned, public access blocked, bucket-owner objects only, TLS-only,
  SSE-KMS with the CMK (the pipeline's artifact store uses the same key), artifacts expire.
- **Roles**: the build role may push to exactly one ECR repository, write its log group, use
  the artifact bucket and the key, and use the connection (for the clone). The pipeline role may
  use the connection, start that one build project, update that one ECS service and pass only
  the roles of that service, only to ECS tasks.
- **Notifications** (optional): failed executions (and, with approval, approvals waiting) go to
  an SNS topic. The topic's policy must let `codestar-notifications.amazonaws.com` publish, and
  an encrypted topic's key must let that service use it.

Example::

    pipeline = ContainerPipeline("web-delivery", ContainerPipelineArgs(
        connection_arn="arn:aws:codeconnections:ap-northeast-2:123456789012:connection/…",
        repository="example-org/web", branch="main",
        cluster_name=web.cluster_name, service_name=web.service_name, container_name="web",
        image_repository_url=web.repository_url,
        pass_role_arns=[web.task_role_arn, web.execution_role_arn],
        require_approval=True, alert_topic_arn=alerts.arn))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from awsblocks.aws_values import LOG_RETENTION_DAYS
from awsblocks.core import AccountFacts, Component, ComponentArgs, account_facts, assume_role_policy
from awsblocks.data.bucket import private_bucket, tls_only_statement
from awsblocks.security.encryption_key import key_arn_or_own
from awsblocks.security.iam import Grant, ecr_pull, kms_use, logs_write, policy_document

BuildArchitecture = Literal["X86_64", "ARM64"]

BUILD_IMAGES: dict[str, tuple[str, str]] = {
    "X86_64": ("aws/codebuild/standard:7.0", "LINUX_CONTAINER"),
    "ARM64": ("aws/codebuild/amazonlinux2-aarch64-standard:3.0", "ARM_CONTAINER"),
}
"""CodeBuild-managed image and environment type per architecture (both ship Python 3.11 and Docker)."""

BUILD_COMPUTE_TYPES = ("BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE")

ENV_REPO_URI = "REPO_URI"
"""Build environment: the ECR repository the image is pushed to (`<registry>/<name>`)."""
ENV_CONTAINER_NAME = "CONTAINER_NAME"
"""Build environment: the task definition's container `imagedefinitions.json` names."""
ENV_ACCOUNT_ID = "AWS_ACCOUNT_ID"
"""Build environment: the account of the registry."""
ENV_IMAGE_REGION = "IMAGE_REGION"
"""Build environment: the region of the registry (for `aws ecr get-login-password`)."""
BUILD_ENVIRONMENT = (ENV_REPO_URI, ENV_CONTAINER_NAME, ENV_ACCOUNT_ID, ENV_IMAGE_REGION)
"""Every variable the build project sets; a buildspec may rely on exactly these."""

IMAGE_DEFINITIONS_FILE = "imagedefinitions.json"
"""The file the build writes and the ECS deploy action reads."""

SOURCE_ARTIFACT = "source"
IMAGE_ARTIFACT = "image"

FAILURE_EVENTS = ("codepipeline-pipeline-pipeline-execution-failed",)
APPROVAL_EVENTS = ("codepipeline-pipeline-manual-approval-needed",)

CONNECTION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_PATTERN = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<![/.])$")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_ECR_URL = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z0-9.]+/(?P<name>[a-z0-9._/-]+)$"
)
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def ecr_repository_arn(repository_url: str, partition: str = "aws") -> str:
    """The ARN of the ECR repository behind `<account>.dkr.ecr.<region>.<suffix>/<name>`."""
    match = _ECR_URL.match(repository_url)
    if not match:
        raise ValueError(
            f"image_repository_url={repository_url!r}; allowed: an ECR repository URL "
            "<account>.dkr.ecr.<region>.amazonaws.com/<name> (no tag)"
        )
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['name']}"


def ecs_service_arn(facts: AccountFacts, cluster_name: str, service_name: str) -> str:
    """The ARN of a service in this account and region (the long, cluster-qualified format)."""
    return facts.arn("ecs", f"service/{cluster_name}/{service_name}")


@dataclass
class ContainerPipelineArgs(ComponentArgs):
    """Arguments of `ContainerPipeline`.

    Attributes:
        connection_arn: ARN of an AVAILABLE CodeConnections connection to the source provider
            (`arn:aws:codeconnections:<region>:<account>:connection/<uuid>`; the older
            `codestar-connections` form works too). A new connection is PENDING until someone
            completes the handshake in the console; the pipeline cannot read the source before.
        repository: The repository, "owner/name".
        branch: Branch whose pushes start the pipeline. Default "main".
        cluster_name: ECS cluster of the service to deploy.
        service_name: ECS service to deploy; the deploy action updates it and nothing else.
        container_name: Container of the service's task definition that runs the image (the
            build writes it into `imagedefinitions.json`).
        image_repository_url: ECR repository URL (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`)
            the build pushes to; the build role may push to this repository only.
        pass_role_arns: The service's task role and execution role: the only roles the pipeline
            may pass (to ECS tasks) when it registers the new task definition revision.
        require_approval: Put a manual Approval stage before Deploy. Default False.
        alert_topic_arn: SNS topic told about failed executions (and approvals waiting, with
            `require_approval`). Its policy must let codestar-notifications.amazonaws.com
            publish. Default none: no notification rule.
        kms_key_arn: CMK for the artifacts, the build and its log group. Its key policy must let
            CloudWatch Logs use it. Default: the component creates one.
        buildspec: Buildspec path in the repository. Default "buildspec.yml".
        build_architecture: "X86_64" (aws/codebuild/standard:7.0) or "ARM64" (Amazon Linux 2
            aarch64 standard:3.0); match the service's CPU architecture. Default "X86_64".
        build_compute_type: BUILD_GENERAL1_SMALL, _MEDIUM or _LARGE. Default BUILD_GENERAL1_SMALL.
        build_timeout_minutes: A build running longer is stopped (5 to 480). Default 30.
        deploy_timeout_minutes: How long the ECS action waits for the service to be stable
            (1 to 60). Default 30.
        log_retention_days: Retention of the build log group. Default 30.
        artifact_retention_days: Days before pipeline artifacts (and old versions) expire. Default 30.
        deletion_protection: Keep the artifact bucket when it holds objects on delete. Default False.
        tags: Tags for every taggable child (the component adds `component`).
    """

    connection_arn: str
    repository: str
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    container_name: str
    image_repository_url: pulumi.Input[str]
    pass_role_arns: Sequence[pulumi.Input[str]]
    branch: str = "main"
    require_approval: bool = False
    alert_topic_arn: pulumi.Input[str] | None = None
    kms_key_arn: pulumi.Input[str] | None = None
    buildspec: str = "buildspec.yml"
    build_architecture: BuildArchitecture = "X86_64"
    build_compute_type: str = "BUILD_GENERAL1_SMALL"
    build_timeout_minutes: int = 30
    deploy_timeout_minutes: int = 30
    log_retention_days: int = 30
    artifact_retention_days: int = 30
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_container_pipeline_args(name: str, args: ContainerPipelineArgs) -> None:
    """Raise ValueError naming the argument, the value given and what is allowed."""
    where = f"ContainerPipeline {name}"
    if not _NAME.match(name):
        raise ValueError(
            f"{where}: name {name!r}; allowed: 1-40 lowercase letters, digits and '-', starting with a letter"
        )
    if not isinstance(args.connection_arn, str) or not CONNECTION_ARN_PATTERN.match(args.connection_arn):
        raise ValueError(
            f"{where}: connection_arn={args.connection_arn!r}; allowed: a connection ARN "
            "arn:aws:codeconnections:<region>:<account>:connection/<uuid> "
            "(or arn:aws:codestar-connections:…)"
        )
    if not REPOSITORY_PATTERN.match(args.repository):
        raise ValueError(f"{where}: repository={args.repository!r}; allowed: 'owner/name'")
    if not BRANCH_PATTERN.match(args.branch):
        raise ValueError(f"{where}: branch={args.branch!r}; allowed: a git branch name such as 'main'")
    if not _CONTAINER_NAME.match(args.container_name):
        raise ValueError(
            f"{where}: container_name={args.container_name!r}; allowed: the task definition's container "
            "name (letters, digits, '-', '_')"
        )
    if isinstance(args.image_repository_url, str) and not _ECR_URL.match(args.image_repository_url):
        raise ValueError(
            f"{where}: image_repository_url={args.image_repository_url!r}; allowed: an ECR repository URL "
            "<account>.dkr.ecr.<region>.amazonaws.com/<name> (no tag)"
        )
    if not args.pass_role_arns:
        raise ValueError(
            f"{where}: pass_role_arns is empty; allowed: the service's task role and execution role ARNs"
        )
    for arn in args.pass_role_arns:
        if isinstance(arn, str) and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", arn):
            raise ValueError(f"{where}: pass_role_arns has {arn!r}; allowed: IAM role ARNs")
    if args.build_architecture not in BUILD_IMAGES:
        raise ValueError(f"{where}: build_architecture={args.build_architecture!r}; allowed: X86_64, ARM64")
    if args.build_compute_type not in BUILD_COMPUTE_TYPES:
        raise ValueError(
            f"{where}: build_compute_type={args.build_compute_type!r}; allowed: "
            + ", ".join(BUILD_COMPUTE_TYPES)
        )
    if not 5 <= args.build_timeout_minutes <= 480:
        raise ValueError(f"{where}: build_timeout_minutes={args.build_timeout_minutes}; allowed: 5 to 480")
    if not 1 <= args.deploy_timeout_minutes <= 60:
        raise ValueError(f"{where}: deploy_timeout_minutes={args.deploy_timeout_minutes}; allowed: 1 to 60")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{where}: log_retention_days={args.log_retention_days}; allowed: "
            + ", ".join(map(str, LOG_RETENTION_DAYS))
        )
    if args.artifact_retention_days < 1:
        raise ValueError(
            f"{where}: artifact_retention_days={args.artifact_retention_days}; allowed: 1 or more"
        )
    if not args.buildspec or args.buildspec.startswith("/"):
        raise ValueError(f"{where}: buildspec={args.buildspec!r}; allowed: a path inside the repository")


# --- grants ----------------------------------------------------------------------------------

ECR_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
"""Push an image (and look up whether its tag already exists) in one repository."""

ARTIFACT_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject")
ARTIFACT_BUCKET_ACTIONS = ("s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning")
CONNECTION_ACTIONS = ("codeconnections:UseConnection", "codestar-connections:UseConnection")
"""Both service prefixes: connections created before the 2024 rename answer to the old one."""


def connection_grant(connection_arn: str) -> Grant:
    """Use one connection (read the repository through it)."""
    return Grant("UseSourceConnection", CONNECTION_ACTIONS, (connection_arn,))


def artifact_grants(bucket_arn: pulumi.Input[str]) -> list[Grant]:
    """Read and write pipeline artifacts in one bucket."""
    objects = pulumi.Output.from_input(bucket_arn).apply(lambda arn: f"{arn}/*")
    return [
        Grant("ArtifactObjects", ARTIFACT_OBJECT_ACTIONS, (objects,)),
        Grant("ArtifactBucket", ARTIFACT_BUCKET_ACTIONS, (bucket_arn,)),
    ]


def build_grants(
    *,
    repository_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    bucket_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    connection_arn: str,
) -> list[Grant]:
    """Everything the build may do: push to one repository, its logs, the artifacts, the key, the clone."""
    pull = ecr_pull([repository_arn], label="Image")  # the registry token (unscopable) and layer reads
    return [
        *pull,
        Grant("ECRPushImage", ECR_PUSH_ACTIONS, (repository_arn,)),
        logs_write(log_group_arn, label="Build"),
        *artifact_grants(bucket_arn),
        kms_use([key_arn], label="Artifacts"),
        connection_grant(connection_arn),
    ]


def pipeline_grants(
    *,
    facts: AccountFacts,
    connection_arn: str,
    project_arn: pulumi.Input[str],
    bucket_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    service_arn: pulumi.Input[str],
    pass_role_arns: Sequence[pulumi.Input[str]],
) -> list[Grant]:
    """Everything the pipeline may do: its source, its build, one service, the service's roles."""
    return [
        connection_grant(connection_arn),
        Grant("StartBuild", ("codebuild:BatchGetBuilds", "codebuild:StartBuild"), (project_arn,)),
        *artifact_grants(bucket_arn),
        kms_use([key_arn], label="Artifacts"),
        Grant("DeployService", ("ecs:DescribeServices", "ecs:UpdateService"), (service_arn,)),
        # Task definitions are registered and described by family, before any ARN exists.
        Grant(
            "TaskDefinitions",
            ("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"),
            ("*",),
            any_resource=True,
        ),
        # The new revision keeps the service's tags; tagging is allowed only while registering.
        Grant(
            "TagNewTaskDefinition",
            ("ecs:TagResource",),
            (facts.arn("ecs", "task-definition/*"),),
            conditions={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        ),
        Grant(
            "PassServiceRoles",
            ("iam:PassRole",),
            tuple(pass_role_arns),
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]


def _service_role_trust(service: str, facts: AccountFacts) -> str:
    return assume_role_policy(f"{service}.{facts.dns_suffix}", source_account=facts.account_id)


def _artifact_bucket_policy(bucket_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [tls_only_statement(bucket_arn)]})


class ContainerPipeline(Component):
    """CodePipeline V2 that builds an image with CodeBuild and deploys it to one ECS service.

    Outputs: `pipeline_arn`, `pipeline_name`, `project_name`, `artifact_bucket_name`,
    `build_role_arn`, `pipeline_role_arn`, `log_group_name`, `kms_key_arn`,
    `notification_rule_arn` (None without `alert_topic_arn`).
    """

    pipeline_arn: pulumi.Output[str]
    pipeline_name: pulumi.Output[str]
    project_name: pulumi.Output[str]
    artifact_bucket_name: pulumi.Output[str]
    build_role_arn: pulumi.Output[str]
    pipeline_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    notification_rule_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ContainerPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_container_pipeline_args(name, args)
        super().__init__("ContainerPipeline", name, args.tags, opts, name_prefix=args.name_prefix)
        facts = account_facts(self)
        self._label = name
        self._spec = args

        kms_key_arn = key_arn_or_own(
            self, args.kms_key_arn, f"{name}-key", f"{name} pipeline: artifacts and build logs", logs=True
        )

        bucket = self._artifact_bucket(kms_key_arn)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-build-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=kms_key_arn,
            tags=self.named_tags(f"{name}-build-logs"),
            opts=self.child_opts(),
        )
        repository_url = pulumi.Output.from_input(args.image_repository_url)
        repository_arn = repository_url.apply(lambda url: ecr_repository_arn(url, facts.partition))

        build_role = aws.iam.Role(
            f"{name}-build-role",
            description=f"{name}: CodeBuild tests, builds and pushes the image (one repository)",
            assume_role_policy=_service_role_trust("codebuild", facts),
            tags=self.named_tags(f"{name}-build-role"),
            opts=self.child_opts(),
        )
        build_policy = aws.iam.RolePolicy(
            f"{name}-build-policy",
            role=build_role.id,
            policy=policy_document(
                build_grants(
                    repository_arn=repository_arn,
                    log_group_arn=log_group.arn,
                    bucket_arn=bucket.arn,
                    key_arn=kms_key_arn,
                    connection_arn=args.connection_arn,
                )
            ),
            opts=self.child_opts(),
        )
        project = self._project(build_role, build_policy, log_group, repository_url, kms_key_arn, facts)

        service_arn = pulumi.Output.all(args.cluster_name, args.service_name).apply(
            lambda names: ecs_service_arn(facts, str(names[0]), str(names[1]))
        )
        pipeline_role = aws.iam.Role(
            f"{name}-pipeline-role",
            description=f"{name}: CodePipeline reads the source, starts the build, deploys one service",
            assume_role_policy=_service_role_trust("codepipeline", facts),
            tags=self.named_tags(f"{name}-pipeline-role"),
            opts=self.child_opts(),
        )
        pipeline_policy = aws.iam.RolePolicy(
            f"{name}-pipeline-policy",
            role=pipeline_role.id,
            policy=policy_document(
                pipeline_grants(
                    facts=facts,
                    connection_arn=args.connection_arn,
                    project_arn=project.arn,
                    bucket_arn=bucket.arn,
                    key_arn=kms_key_arn,
                    service_arn=service_arn,
                    pass_role_arns=args.pass_role_arns,
                )
            ),
            opts=self.child_opts(),
        )
        pipeline = aws.codepipeline.Pipeline(
            f"{name}-pipeline",
            pipeline_type="V2",
            execution_mode="SUPERSEDED",
            role_arn=pipeline_role.arn,
            artifact_stores=[
                aws.codepipeline.PipelineArtifactStoreArgs(
                    location=bucket.id,
                    type="S3",
                    encryption_key=aws.codepipeline.PipelineArtifactStoreEncryptionKeyArgs(
                        id=kms_key_arn, type="KMS"
                    ),
                )
            ],
            stages=self._stages(project),
            tags=self.named_tags(f"{name}-pipeline"),
            # The role must hold its permissions before the pipeline's first (automatic) run.
            opts=self.child_opts(depends_on=[pipeline_policy]),
        )

        notification_rule_arn: pulumi.Output[str] | None = None
        if args.alert_topic_arn is not None:
            events = FAILURE_EVENTS + (APPROVAL_EVENTS if args.require_approval else ())
            rule = aws.codestarnotifications.NotificationRule(
                f"{name}-notifications",
                name=f"{self.name_prefix}{name}"[:64],
                resource=pipeline.arn,
                detail_type="BASIC",
                event_type_ids=list(events),
                targets=[
                    aws.codestarnotifications.NotificationRuleTargetArgs(
                        address=args.alert_topic_arn, type="SNS"
                    )
                ],
                tags=self.named_tags(f"{name}-notifications"),
                opts=self.child_opts(),
            )
            notification_rule_arn = rule.arn

        self.pipeline_arn = pipeline.arn
        self.pipeline_name = pipeline.name
        self.project_name = project.name
        self.artifact_bucket_name = bucket.id
        self.build_role_arn = build_role.arn
        self.pipeline_role_arn = pipeline_role.arn
        self.log_group_name = log_group.name
        self.kms_key_arn = kms_key_arn
        self.notification_rule_arn = notification_rule_arn
        self.register_outputs(
            {
                "pipeline_arn": pipeline.arn,
                "pipeline_name": pipeline.name,
                "project_name": project.name,
                "artifact_bucket_name": bucket.id,
                "build_role_arn": build_role.arn,
                "pipeline_role_arn": pipeline_role.arn,
                "log_group_name": log_group.name,
                "kms_key_arn": kms_key_arn,
                "notification_rule_arn": notification_rule_arn,
            }
        )

    # --- parts ----------------------------------------------------------------------------

    def _artifact_bucket(self, kms_key_arn: pulumi.Output[str]) -> aws.s3.Bucket:
        """Versioned, public-blocked, owner-enforced, TLS-only, SSE-KMS with the CMK, expiring."""
        name, args = self._label, self._spec
        bucket, _policy = private_bucket(
            self,
            f"{name}-artifacts",
            policy=_artifact_bucket_policy,
            expiration_days=args.artifact_retention_days,
            kms_key_arn=kms_key_arn,
            force_destroy=not args.deletion_protection,
        )
        return bucket

    def _project(
        self,
        role: aws.iam.Role,
        policy: aws.iam.RolePolicy,
        log_group: aws.cloudwatch.LogGroup,
        repository_url: pulumi.Output[str],
        kms_key_arn: pulumi.Output[str],
        facts: AccountFacts,
    ) -> aws.codebuild.Project:
        name, args = self._label, self._spec
        image, environment_type = BUILD_IMAGES[args.build_architecture]
        plain: dict[str, pulumi.Input[str]] = {
            ENV_REPO_URI: repository_url,
            ENV_CONTAINER_NAME: args.container_name,
            ENV_ACCOUNT_ID: facts.account_id,
            ENV_IMAGE_REGION: facts.region,
        }
        return aws.codebuild.Project(
            f"{name}-build",
            description=f"{name}: test, build and push the image; write {IMAGE_DEFINITIONS_FILE}",
            service_role=role.arn,
            source=aws.codebuild.ProjectSourceArgs(type="CODEPIPELINE", buildspec=args.buildspec),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="CODEPIPELINE"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                image=image,
                type=environment_type,
                compute_type=args.build_compute_type,
                image_pull_credentials_type="CODEBUILD",
                # Privileged mode runs the Docker daemon inside the build container: the buildspec
                # runs `docker build` and `docker push`. Nothing else needs it, and the build is
                # given no credentials beyond its role.
                privileged_mode=True,
                environment_variables=[
                    aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                        name=key, value=value, type="PLAINTEXT"
                    )
                    for key, value in plain.items()
                ],
            ),
            encryption_key=kms_key_arn,
            build_timeout=args.build_timeout_minutes,
            queued_timeout=60,
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            tags=self.named_tags(f"{name}-build"),
            opts=self.child_opts(depends_on=[policy]),
        )

    def _stages(self, project: aws.codebuild.Project) -> list[aws.codepipeline.PipelineStageArgs]:
        args = self._spec
        action = aws.codepipeline.PipelineStageActionArgs
        stages = [
            aws.codepipeline.PipelineStageArgs(
                name="Source",
                actions=[
                    action(
                        name="Source",
                        category="Source",
                        owner="AWS",
                        provider="CodeStarSourceConnection",
                        version="1",
                        namespace="SourceVariables",
                        output_artifacts=[SOURCE_ARTIFACT],
                        configuration={
                            "ConnectionArn": args.connection_arn,
                            "FullRepositoryId": args.repository,
                            "BranchName": args.branch,
                            # A full clone: the build's tests read git history.
                            "OutputArtifactFormat": "CODEBUILD_CLONE_REF",
                            "DetectChanges": "true",
                        },
                    )
                ],
            ),
            aws.codepipeline.PipelineStageArgs(
                name="Build",
                actions=[
                    action(
                        name="Build",
                        category="Build",
                        owner="AWS",
                        provider="CodeBuild",
                        version="1",
                        input_artifacts=[SOURCE_ARTIFACT],
                        output_artifacts=[IMAGE_ARTIFACT],
                        configuration={"ProjectName": project.name},
                    )
                ],
            ),
        ]
        if args.require_approval:
            stages.append(
                aws.codepipeline.PipelineStageArgs(
                    name="Approval",
                    actions=[
                        action(
                            name="Approve",
                            category="Approval",
                            owner="AWS",
                            provider="Manual",
                            version="1",
                            configuration={
                                "CustomData": pulumi.Output.concat(
                                    "Deploy commit #{SourceVariables.CommitId} to ",
                                    pulumi.Output.from_input(args.service_name),
                                    "?",
                                )
                            },
                        )
                    ],
                )
            )
        stages.append(
            aws.codepipeline.PipelineStageArgs(
                name="Deploy",
                actions=[
                    action(
                        name="Deploy",
                        category="Deploy",
                        owner="AWS",
                        provider="ECS",
                        version="1",
                        input_artifacts=[IMAGE_ARTIFACT],
                        configuration={
                            "ClusterName": args.cluster_name,
                            "ServiceName": args.service_name,
                            "FileName": IMAGE_DEFINITIONS_FILE,
                            "DeploymentTimeout": str(args.deploy_timeout_minutes),
                        },
                    )
                ],
            )
        )
        return stages
