"""`WebService`: a container on ECS Fargate behind an Application Load Balancer, secure by default.

What a team gets from one declaration:

- **Image**: an ECR repository (scan on push, immutable tags, KMS encryption, a lifecycle
  policy keeping the last N images) and the image built from a context directory with
  `pulumi_docker`, tagged by the content of the context (`awsblocks.web.build_context`). The task
  definition runs the image **by digest** (`<repository>@sha256:…`, the digest the push
  returned), never by tag: what runs is pinned by content, whichever tag names it. The content
  tag is only the build's name, and it is the one tag pattern (`ctx-*`) the repository lets a
  push move (`IMMUTABLE_WITH_EXCLUSION`; every other tag, such as a pipeline's commit tags,
  stays immutable): pulumi-docker decides to rebuild from its own context hash (full file
  modes, its own version), so a permission-only difference between checkouts, a provider
  upgrade or a retried push pushes an existing content tag again, which an IMMUTABLE repository
  refuses and this one accepts. A moved tag changes nothing that runs; the task definition
  follows the new digest in the same update. A delivery pipeline can pass a prebuilt
  `image_uri` instead; the repository stays for it to push to.
- **Cluster**: an ECS cluster with Container Insights, or an existing cluster by ARN.
- **Task**: Fargate, CPU/memory checked against Fargate's combinations, read-only root
  filesystem with a writable `/tmp` volume, non-privileged, a non-root user, all Linux
  capabilities dropped, `awslogs` to its own encrypted log group with retention. Secrets come
  only from SSM Parameter Store or Secrets Manager ARNs; a secret-looking plain environment
  variable is refused. The task role holds exactly the caller's `grants`; the execution role
  may pull from this repository, write to this log group and read the named secrets, nothing else.
- **Load balancer**: internet-facing ALB in the public subnets; its security group admits 443
  (with a certificate) and 80 (redirect to HTTPS, or plain HTTP without a certificate, with a
  warning) from anywhere and sends only to the tasks on the container port. TLS 1.2+ policy,
  invalid header fields dropped, desync mitigation, access logs to a versioned, public-blocked,
  TLS-only bucket with expiry, optional deletion protection. Target group (ip targets) with a
  health check on `health_check_path`.
- **Service**: tasks in the private subnets without public IPs, reachable only from the ALB's
  security group; circuit breaker with rollback; target-tracking autoscaling on CPU and on ALB
  requests per target between `min_count` and `max_count`.
- **One owner of the running image**: by default the program owns the task definition the
  service runs. With `deployed_by_pipeline`, a delivery pipeline owns it (`ContainerPipeline`:
  its ECS deploy registers revisions with the image named in `imagedefinitions.json`), and the
  service ignores changes to its task definition, so a later `pulumi up` or `pulumi refresh`
  never points the service back at the image built from the deployer's working tree. The
  program's task definition is then the revision the service is created with. Trade-off: the
  ECS deploy action derives each new revision from the one the service runs, so a later change
  the program makes to the task definition (environment, CPU, memory, roles) is registered but
  does not reach the running service (see `deployed_by_pipeline`).
- **WAF** (optional): a regional web ACL with the AWS common and known-bad-inputs rule groups
  and a per-IP rate limit, associated with the ALB, logging to `aws-waf-logs-…`.

The access-log bucket uses SSE-S3 (AES256), not a CMK: Application Load Balancers can deliver
access logs only to buckets encrypted with S3-managed keys.

Example::

    api = WebService("api", WebServiceArgs(
        vpc_id=net.vpc_id, public_subnet_ids=net.public_subnet_ids,
        private_subnet_ids=net.private_subnet_ids,
        build_context=".", dockerfile="app/Dockerfile", container_port=8000,
        environment={"TABLE": orders.name}, grants=[dynamodb_read_write(orders.arn)]))
    pulumi.export("url", api.url)
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from awsblocks.aws_values import ACM_CERTIFICATE_ARN, FARGATE_MEMORY_MB, fargate_memory_options
from awsblocks.core import AccountFacts, Component, ComponentArgs, account_facts, assume_role_policy
from awsblocks.data.bucket import private_bucket, tls_only_statement
from awsblocks.security.encryption_key import key_arn_or_own
from awsblocks.security.iam import (
    Grant,
    ecr_pull,
    kms_decrypt,
    logs_write,
    policy_document,
    secrets_read,
    ssm_read_parameters,
)
from awsblocks.web.build_context import TAG_PREFIX, context_tag
from awsblocks.web.waf import WafArgs, declare_waf, validate_waf_args

CpuArchitecture = Literal["X86_64", "ARM64"]
DesyncMode = Literal["defensive", "strictest"]


DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONTENT_TAG_FILTER = TAG_PREFIX + "*"
"""The tags a push may move in the image repository: the content tags this component builds.
See https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html."""
PLATFORM_OF_ARCHITECTURE = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}

ELB_LOG_DELIVERY_ACCOUNTS: dict[str, str] = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-south-1": "718504428378",
    "sa-east-1": "507241528517",
}
"""Elastic Load Balancing's log-delivery account in regions opened before August 2022.
Newer regions deliver as the `logdelivery.elasticloadbalancing.amazonaws.com` service principal."""

ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LIKE = re.compile(
    r"(^|_)(SECRET|SECRETS|PASSWORD|PASSWD|PASSPHRASE|TOKEN|TOKENS|CREDENTIAL|CREDENTIALS|APIKEY)(_|$)"
    r"|(^|_)KEY$|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|SIGNING_?KEY",
    re.IGNORECASE,
)
_SSM_PARAMETER_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/.+$")
_SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_ROOT_USERS = ("root", "0")
_MODERN_SSL_POLICY = re.compile(r"^ELBSecurityPolicy-TLS13-1-[23]-[A-Za-z0-9-]+$")
"""TLS 1.3 offered, nothing below 1.2 accepted (the ELB policies named TLS13-1-2-… and TLS13-1-3-…)."""


def looks_secret(env_name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (PASSWORD, API_KEY, …)."""
    return bool(_SECRET_LIKE.search(env_name))


def elb_log_delivery_principal(region: str, partition: str = "aws") -> dict[str, str]:
    """The principal ELB writes access logs as in `region` (an account, or the service principal)."""
    account = ELB_LOG_DELIVERY_ACCOUNTS.get(region)
    if account and partition == "aws":
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY_SERVICE}


@dataclass
class WebServiceArgs(ComponentArgs):
    """Arguments of `WebService`.

    Attributes:
        vpc_id: VPC of the load balancer and the tasks.
        public_subnet_ids: Subnets of the internet-facing ALB (at least two, in different AZs).
        private_subnet_ids: Subnets of the tasks (no public IPs). Give one per AZ: Fargate
            spreads the tasks across them.
        build_context: Directory sent to `docker build` (relative to the working directory or
            absolute). Exactly one of `build_context` and `image_uri` is required.
        dockerfile: Dockerfile path relative to `build_context`. Default "Dockerfile".
        build_args: Docker build arguments (part of the content tag). Default none.
        image_uri: A prebuilt image (e.g. `<repository_url>:<commit>` pushed by a pipeline)
            instead of building one. It must live in this component's repository (the execution
            role may pull only from there) or a public registry.
        cpu_architecture: "X86_64" or "ARM64" (build platform and task runtime). Default "X86_64".
        container_port: Port the container listens on. Default 8080.
        health_check_path: Path the target group probes; must answer 200. Default "/healthz".
        cpu: Task CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384. Default 256.
        memory_mb: Task memory in MiB, allowed for `cpu` by Fargate (see FARGATE_MEMORY_MB).
            Default 512.
        user: User (and group) the container runs as; never root. Default "1000:1000".
        environment: Plain environment variables. A name that looks secret (PASSWORD, TOKEN,
            API_KEY, …) with a non-empty value is refused: put it in `secrets`.
        not_secret: Names from `environment` that look secret but are not (an explicit opt-out).
        secrets: Environment name → ARN of an SSM parameter or a Secrets Manager secret (a string,
            so it is checked at declaration). The execution role may read exactly these.
        secrets_kms_key_arns: CMKs that encrypt those secrets (the execution role may decrypt
            with them). Default none (AWS-managed keys need no grant).
        grants: Everything the application may do in AWS; the task role holds exactly these.
            Default none.
        deployed_by_pipeline: A delivery pipeline deploys the service (registers the task
            definition revisions it runs): the service ignores changes to `task_definition`, so
            `pulumi up` and `pulumi refresh` leave the pipeline's revision running. A change the
            program makes to the task definition afterwards is registered as a new revision but
            not run: the pipeline's ECS deploy derives its revisions from the running one.
            Default False: the program owns the running revision.
        desired_count: Tasks to start with; between `min_count` and `max_count`. Default 2.
            Autoscaling owns the count afterwards (later changes to it are ignored).
        spot: Run the tasks on Fargate Spot (interruptible at two minutes' notice, about 70%
            cheaper): for development stacks. On a cluster the component creates, it enables
            the FARGATE_SPOT capacity provider; a cluster passed in must have it. Default False.
        min_count: Autoscaling minimum. Default 2.
        max_count: Autoscaling maximum. Default 4.
        cpu_target_percent: Average CPU utilisation autoscaling holds the service at. Default 60.
        requests_per_target: ALB requests per task per minute autoscaling holds. Default 1000.
        certificate_arn: ACM certificate for the HTTPS listener. Default none: plain HTTP, with a
            warning in the program's output (development only).
        ssl_policy: TLS policy of the HTTPS listener: one that offers TLS 1.3 and accepts nothing
            below 1.2 (ELBSecurityPolicy-TLS13-1-2-… or -1-3-…). Default
            ELBSecurityPolicy-TLS13-1-2-2021-06 (AWS's recommended policy).
        desync_mitigation_mode: "defensive" or "strictest". Default "defensive".
        waf: A WAF in front of the ALB. Default none.
        deletion_protection: Protect the ALB from deletion; keep the image repository and log
            bucket when they hold data. Default False.
        log_retention_days: Retention of the container log group. Default 30.
        kms_key_arn: CMK for the log groups and the image repository. Its key policy must let
            CloudWatch Logs use it. Default: the component creates one.
        access_log_retention_days: Days before ALB access logs expire. Default 90.
        image_retention_count: Images the repository keeps (untagged ones expire after a day).
            Default 20.
        cluster_arn: Run in this existing ECS cluster. Default: the component creates one.
        health_check_grace_period_seconds: Time a new task gets before health checks count.
            Default 60.
        tags: Tags for every taggable child (the component adds `component`).
    """

    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    build_context: str | None = None
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    image_uri: pulumi.Input[str] | None = None
    cpu_architecture: CpuArchitecture = "X86_64"
    container_port: int = 8080
    health_check_path: str = "/healthz"
    cpu: int = 256
    memory_mb: int = 512
    user: str = "1000:1000"
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    not_secret: Sequence[str] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)
    secrets_kms_key_arns: Sequence[pulumi.Input[str]] = ()
    grants: Sequence[Grant] = ()
    deployed_by_pipeline: bool = False
    desired_count: int = 2
    spot: bool = False
    min_count: int = 2
    max_count: int = 4
    cpu_target_percent: float = 60.0
    requests_per_target: int = 1000
    certificate_arn: str | None = None
    ssl_policy: str = DEFAULT_SSL_POLICY
    desync_mitigation_mode: DesyncMode = "defensive"
    waf: WafArgs | None = None
    deletion_protection: bool = False
    log_retention_days: int = 30
    kms_key_arn: pulumi.Input[str] | None = None
    access_log_retention_days: int = 90
    image_retention_count: int = 20
    cluster_arn: pulumi.Input[str] | None = None
    health_check_grace_period_seconds: int = 60
    tags: Mapping[str, str] = field(default_factory=dict)


def service_ignored_changes(args: WebServiceArgs) -> list[str]:
    """Service properties the program leaves to their other owner: autoscaling's count, and the
    running task definition when a delivery pipeline deploys the service."""
    return ["desiredCount", *(["taskDefinition"] if args.deployed_by_pipeline else [])]


def validate_web_service_args(name: str, args: WebServiceArgs) -> None:
    """Raise ValueError naming the argument, the value given and what is allowed."""
    where = f"WebService {name}"
    if not _NAME.match(name):
        raise ValueError(
            f"{where}: name {name!r}; allowed: 1-20 lowercase letters, digits and '-', starting with a "
            "letter (it prefixes the load balancer and target group names, which AWS caps at 32)"
        )
    if (args.build_context is None) == (args.image_uri is None):
        raise ValueError(
            f"{where}: build_context={args.build_context!r}, image_uri={args.image_uri!r}; "
            "allowed: exactly one of them"
        )
    if args.cpu_architecture not in PLATFORM_OF_ARCHITECTURE:
        raise ValueError(f"{where}: cpu_architecture={args.cpu_architecture!r}; allowed: X86_64, ARM64")
    if len(args.public_subnet_ids) < 2:
        raise ValueError(
            f"{where}: {len(args.public_subnet_ids)} public subnets; allowed: at least 2 in different "
            "AZs (an Application Load Balancer needs two)"
        )
    if not args.private_subnet_ids:
        raise ValueError(f"{where}: no private_subnet_ids; allowed: one or more subnet ids")
    if not 1 <= args.container_port <= 65535:
        raise ValueError(f"{where}: container_port={args.container_port}; allowed: 1 to 65535")
    if not args.health_check_path.startswith("/"):
        raise ValueError(
            f"{where}: health_check_path={args.health_check_path!r}; allowed: a path like /healthz"
        )
    memory_options = fargate_memory_options(args.cpu)
    if not memory_options:
        raise ValueError(
            f"{where}: cpu={args.cpu}; allowed: {', '.join(map(str, FARGATE_MEMORY_MB))} (CPU units)"
        )
    if args.memory_mb not in memory_options:
        raise ValueError(
            f"{where}: memory_mb={args.memory_mb} with cpu={args.cpu}; allowed by Fargate: "
            f"{memory_options[0]} to {memory_options[-1]} in steps of "
            f"{memory_options[1] - memory_options[0]} MiB ({', '.join(map(str, memory_options))})"
        )
    if args.user.split(":")[0] in _ROOT_USERS:
        raise ValueError(f"{where}: user={args.user!r}; allowed: a non-root user such as '1000:1000'")
    if args.min_count < 1:
        raise ValueError(f"{where}: min_count={args.min_count}; allowed: 1 or more")
    if args.max_count < args.min_count:
        raise ValueError(
            f"{where}: max_count={args.max_count} is below min_count={args.min_count}; "
            "allowed: max_count >= min_count"
        )
    if not args.min_count <= args.desired_count <= args.max_count:
        raise ValueError(
            f"{where}: desired_count={args.desired_count} is outside min_count={args.min_count} .. "
            f"max_count={args.max_count}; allowed: min_count <= desired_count <= max_count"
        )
    if not 10 <= args.cpu_target_percent <= 90:
        raise ValueError(f"{where}: cpu_target_percent={args.cpu_target_percent}; allowed: 10 to 90")
    if args.requests_per_target < 1:
        raise ValueError(f"{where}: requests_per_target={args.requests_per_target}; allowed: 1 or more")
    _validate_environment(where, args)
    if args.certificate_arn is not None and not ACM_CERTIFICATE_ARN.match(args.certificate_arn):
        raise ValueError(
            f"{where}: certificate_arn={args.certificate_arn!r} is not an ACM certificate ARN; "
            "allowed: arn:aws:acm:<region>:<account>:certificate/<id>"
        )
    if args.desync_mitigation_mode not in ("defensive", "strictest"):
        raise ValueError(
            f"{where}: desync_mitigation_mode={args.desync_mitigation_mode!r}; allowed: defensive, strictest"
        )
    if not _MODERN_SSL_POLICY.match(args.ssl_policy):
        raise ValueError(
            f"{where}: ssl_policy={args.ssl_policy!r}; allowed: a TLS 1.2+ policy that offers TLS 1.3 "
            "(ELBSecurityPolicy-TLS13-1-2-… or ELBSecurityPolicy-TLS13-1-3-…; TLS13-1-0/1-1 still accept "
            "TLS 1.0/1.1)"
        )
    if args.image_retention_count < 1:
        raise ValueError(f"{where}: image_retention_count={args.image_retention_count}; allowed: 1 or more")
    if args.access_log_retention_days < 1:
        raise ValueError(
            f"{where}: access_log_retention_days={args.access_log_retention_days}; allowed: 1 or more"
        )
    if args.waf is not None:
        validate_waf_args(where, args.waf)


def _validate_environment(where: str, args: WebServiceArgs) -> None:
    for env_name in [*args.environment, *args.secrets]:
        if not _ENV_NAME.match(env_name):
            raise ValueError(f"{where}: environment name {env_name!r}; allowed: letters, digits, '_'")
    both = sorted(set(args.environment) & set(args.secrets))
    if both:
        raise ValueError(f"{where}: {both} given both as environment and secrets; allowed: one of them")
    for env_name, value in args.environment.items():
        if env_name in args.not_secret or not looks_secret(env_name):
            continue
        if isinstance(value, str) and value == "":
            continue
        raise ValueError(
            f"{where}: environment variable {env_name} looks like a secret and is passed as plain "
            "environment; allowed: put its SSM parameter or Secrets Manager ARN in `secrets` "
            f"(or list {env_name!r} in `not_secret` if it is not secret)"
        )
    for env_name, arn in args.secrets.items():
        if not isinstance(arn, str) or not (_SSM_PARAMETER_ARN.match(arn) or _SECRETS_MANAGER_ARN.match(arn)):
            raise ValueError(
                f"{where}: secrets[{env_name!r}]={arn!r}; allowed: an SSM parameter ARN "
                "(arn:aws:ssm:<region>:<account>:parameter/…) or a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:…)"
            )


def _relative_to_cwd(path: Path) -> str:
    """A path as the docker provider should see it: relative to the working directory when possible."""
    resolved = path.resolve()
    try:
        return os.path.relpath(resolved, Path.cwd())
    except ValueError:
        return str(resolved)


def _docker_provider(name: str) -> ModuleType:
    """pulumi-docker, an optional dependency: only a service built from a context needs it."""
    try:
        return importlib.import_module("pulumi_docker")
    except ImportError as error:
        raise ValueError(
            f"WebService {name}: build_context needs pulumi-docker; install it with "
            "`pip install 'awsblocks[docker]'`, or pass image_uri instead"
        ) from error


class WebService(Component):
    """Fargate service behind an ALB, with its image, roles, logs, autoscaling and optional WAF.

    Outputs: `url`, `alb_arn`, `alb_arn_suffix`, `alb_dns_name`, `alb_zone_id`,
    `target_group_arn_suffix`, `cluster_name`, `service_name`, `task_role_arn`,
    `task_role_name`, `execution_role_arn`, `log_group_name`, `repository_url`, `image_uri` (the
    image the task definition runs: `<repository>@sha256:…` when built, else the given URI),
    `alb_security_group_id`, `service_security_group_id`, `web_acl_arn` (None without WAF).
    """

    url: pulumi.Output[str]
    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    alb_zone_id: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    task_role_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    alb_security_group_id: pulumi.Output[str]
    service_security_group_id: pulumi.Output[str]
    web_acl_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: WebServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_web_service_args(name, args)
        image_tag = None
        if args.build_context is not None:
            context = Path(args.build_context)
            image_tag = context_tag(
                context,
                context / args.dockerfile,
                platform=PLATFORM_OF_ARCHITECTURE[args.cpu_architecture],
                build_args=args.build_args,
            )
        super().__init__("WebService", name, args.tags, opts, name_prefix=args.name_prefix)
        facts = account_facts(self)
        self._label = name
        self._spec = args

        kms_key_arn = key_arn_or_own(
            self, args.kms_key_arn, f"{name}-key", f"{name} web service: logs and images", logs=True
        )

        repository = self._repository(kms_key_arn)
        image_uri = self._image(repository, image_tag)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=kms_key_arn,
            tags=self.named_tags(f"{name}-logs"),
            opts=self.child_opts(),
        )
        execution_role, task_role = self._roles(facts, repository, log_group)
        cluster_arn, cluster_name = self._cluster()
        task_definition = self._task_definition(facts, image_uri, log_group, execution_role, task_role)

        alb_sg, service_sg = self._security_groups()
        bucket = self._access_log_bucket(facts)
        alb, target_group, listeners, url = self._load_balancer(alb_sg, bucket)
        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster_arn,
            task_definition=task_definition.arn,
            desired_count=args.desired_count,
            # Spot runs through a capacity provider strategy; a service sets one or a launch type.
            launch_type=None if args.spot else "FARGATE",
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE_SPOT", weight=1)
            ]
            if args.spot
            else None,
            platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.private_subnet_ids),
                security_groups=[service_sg.id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group.arn, container_name=name, container_port=args.container_port
                )
            ],
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            health_check_grace_period_seconds=args.health_check_grace_period_seconds,
            availability_zone_rebalancing="ENABLED",
            enable_ecs_managed_tags=True,
            enable_execute_command=False,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            tags=self.named_tags(f"{name}-service"),
            # Autoscaling owns the count; a pipeline, when it deploys, owns the running revision.
            opts=self.child_opts(depends_on=listeners, ignore_changes=service_ignored_changes(args)),
        )
        self._autoscaling(cluster_name, service, alb, target_group)
        web_acl_arn = declare_waf(self, name, args.waf, alb, kms_key_arn) if args.waf is not None else None

        self.url = url
        self.alb_arn = alb.arn
        self.alb_arn_suffix = alb.arn_suffix
        self.alb_dns_name = alb.dns_name
        self.alb_zone_id = alb.zone_id
        self.target_group_arn_suffix = target_group.arn_suffix
        self.cluster_name = cluster_name
        self.service_name = service.name
        self.task_role_arn = task_role.arn
        self.task_role_name = task_role.name
        self.execution_role_arn = execution_role.arn
        self.log_group_name = log_group.name
        self.repository_url = repository.repository_url
        self.image_uri = image_uri
        self.alb_security_group_id = alb_sg.id
        self.service_security_group_id = service_sg.id
        self.web_acl_arn = web_acl_arn
        self.register_outputs(
            {
                "url": url,
                "alb_arn": alb.arn,
                "alb_arn_suffix": alb.arn_suffix,
                "alb_dns_name": alb.dns_name,
                "alb_zone_id": alb.zone_id,
                "target_group_arn_suffix": target_group.arn_suffix,
                "cluster_name": cluster_name,
                "service_name": service.name,
                "task_role_arn": task_role.arn,
                "task_role_name": task_role.name,
                "execution_role_arn": execution_role.arn,
                "log_group_name": log_group.name,
                "repository_url": repository.repository_url,
                "image_uri": image_uri,
                "alb_security_group_id": alb_sg.id,
                "service_security_group_id": service_sg.id,
                "web_acl_arn": web_acl_arn,
            }
        )

    # --- image ----------------------------------------------------------------------------

    def _repository(self, kms_key_arn: pulumi.Input[str]) -> aws.ecr.Repository:
        name, args = self._label, self._spec
        repository = aws.ecr.Repository(
            f"{name}-repo",
            # Immutable except the content tags this component pushes (see the module docstring):
            # the task definition runs a digest, so a content tag that moves changes nothing running.
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                    filter=CONTENT_TAG_FILTER, filter_type="WILDCARD"
                )
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=kms_key_arn)
            ],
            force_delete=not args.deletion_protection,
            tags=self.named_tags(f"{name}-repo"),
            opts=self.child_opts(),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repo-lifecycle",
            repository=repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "expire untagged images after a day",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 1,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": f"keep the last {args.image_retention_count} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": args.image_retention_count,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=self.child_opts(),
        )
        return repository

    def _image(self, repository: aws.ecr.Repository, image_tag: str | None) -> pulumi.Output[str]:
        """The image the task runs: the digest of the build pushed under its content tag, or the given URI."""
        name, args = self._label, self._spec
        if args.image_uri is not None:
            return pulumi.Output.from_input(args.image_uri)
        assert args.build_context is not None and image_tag is not None  # checked by validation
        context = Path(args.build_context)
        docker = _docker_provider(name)
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        image = docker.Image(
            f"{name}-image",
            image_name=repository.repository_url.apply(lambda url: f"{url}:{image_tag}"),
            build=docker.DockerBuildArgs(
                context=_relative_to_cwd(context),
                dockerfile=_relative_to_cwd(context / args.dockerfile),
                platform=PLATFORM_OF_ARCHITECTURE[args.cpu_architecture],
                args=dict(args.build_args) or None,
            ),
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=self.child_opts(),
        )
        # `<repository>@sha256:…`: the pushed manifest, immune to whatever later happens to the tag.
        return image.repo_digest

    # --- identity -------------------------------------------------------------------------

    def _assume_role_policy(self, facts: AccountFacts) -> str:
        return assume_role_policy(
            "ecs-tasks.amazonaws.com", source_account=facts.account_id, source_arn_like=facts.arn("ecs", "*")
        )

    def _roles(
        self, facts: AccountFacts, repository: aws.ecr.Repository, log_group: aws.cloudwatch.LogGroup
    ) -> tuple[aws.iam.Role, aws.iam.Role]:
        name, args = self._label, self._spec
        execution_role = aws.iam.Role(
            f"{name}-execution-role",
            description=f"{name}: ECS agent pulls the image, writes logs, reads the task's secrets",
            assume_role_policy=self._assume_role_policy(facts),
            tags=self.named_tags(f"{name}-execution-role"),
            opts=self.child_opts(),
        )
        execution_grants: list[Grant] = [*ecr_pull([repository.arn]), logs_write(log_group.arn)]
        ssm_arns = sorted(arn for arn in args.secrets.values() if _SSM_PARAMETER_ARN.match(arn))
        secret_arns = sorted(arn for arn in args.secrets.values() if _SECRETS_MANAGER_ARN.match(arn))
        if ssm_arns:
            execution_grants.append(ssm_read_parameters(ssm_arns))
        if secret_arns:
            execution_grants.append(secrets_read(secret_arns))
        if args.secrets_kms_key_arns and args.secrets:
            execution_grants.append(kms_decrypt(list(args.secrets_kms_key_arns), label="secrets"))
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=execution_role.id,
            policy=policy_document(execution_grants),
            opts=self.child_opts(),
        )
        task_role = aws.iam.Role(
            f"{name}-task-role",
            description=f"{name}: what the application may do in AWS (declared grants only)",
            assume_role_policy=self._assume_role_policy(facts),
            tags=self.named_tags(f"{name}-task-role"),
            opts=self.child_opts(),
        )
        if args.grants:
            aws.iam.RolePolicy(
                f"{name}-task-policy",
                role=task_role.id,
                policy=policy_document(list(args.grants)),
                opts=self.child_opts(),
            )
        return execution_role, task_role

    # --- compute --------------------------------------------------------------------------

    def _cluster(self) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        name, args = self._label, self._spec
        if args.cluster_arn is not None:
            arn = pulumi.Output.from_input(args.cluster_arn)
            return arn, arn.apply(lambda value: value.rsplit("/", 1)[-1])
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=self.named_tags(f"{name}-cluster"),
            opts=self.child_opts(),
        )
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            opts=self.child_opts(),
        )
        # The service may only name FARGATE_SPOT once the cluster has it: its ARN waits for that.
        arn_with_capacity = pulumi.Output.all(cluster.arn, capacity.id).apply(lambda values: str(values[0]))
        return arn_with_capacity, cluster.name

    def _task_definition(
        self,
        facts: AccountFacts,
        image_uri: pulumi.Output[str],
        log_group: aws.cloudwatch.LogGroup,
        execution_role: aws.iam.Role,
        task_role: aws.iam.Role,
    ) -> aws.ecs.TaskDefinition:
        name, args = self._label, self._spec
        container: dict[str, Any] = {
            "name": name,
            "image": image_uri,
            "essential": True,
            "portMappings": [{"containerPort": args.container_port, "protocol": "tcp"}],
            "readonlyRootFilesystem": True,
            "privileged": False,
            "user": args.user,
            "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
            "environment": [{"name": k, "value": args.environment[k]} for k in sorted(args.environment)],
            "secrets": [{"name": k, "valueFrom": args.secrets[k]} for k in sorted(args.secrets)],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group.name,
                    "awslogs-region": facts.region,
                    "awslogs-stream-prefix": name,
                },
            },
            "stopTimeout": 30,
        }
        return aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{self.name_prefix}{name}",
            cpu=str(args.cpu),
            memory=str(args.memory_mb),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=args.cpu_architecture
            ),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name="tmp")],
            container_definitions=pulumi.Output.json_dumps([container]),
            tags=self.named_tags(f"{name}-task"),
            opts=self.child_opts(),
        )

    # --- network --------------------------------------------------------------------------

    def _security_groups(self) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """Two groups without inline rules (AWS's default allow-all egress is removed) and
        standalone rules, so each group can reference the other."""
        name, args = self._label, self._spec
        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args.vpc_id,
            description=f"{name} load balancer: HTTP(S) from the internet, out to the tasks only",
            tags=self.named_tags(f"{name}-alb-sg"),
            opts=self.child_opts(),
        )
        service_sg = aws.ec2.SecurityGroup(
            f"{name}-service-sg",
            vpc_id=args.vpc_id,
            description=f"{name} tasks: from the load balancer only, HTTPS out",
            tags=self.named_tags(f"{name}-service-sg"),
            opts=self.child_opts(),
        )
        public_ports = [(80, "http")] + ([(443, "https")] if args.certificate_arn else [])
        for port, label in public_ports:
            purpose = "redirect to HTTPS" if (port == 80 and args.certificate_arn) else label.upper()
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-{label}-in",
                security_group_id=alb_sg.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{purpose} from the internet",
                tags=self.named_tags(f"{name}-alb-{label}-in"),
                opts=self.child_opts(),
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-tasks",
            security_group_id=alb_sg.id,
            referenced_security_group_id=service_sg.id,
            ip_protocol="tcp",
            from_port=args.container_port,
            to_port=args.container_port,
            description="to the tasks on the container port",
            tags=self.named_tags(f"{name}-alb-to-tasks"),
            opts=self.child_opts(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-tasks-from-alb",
            security_group_id=service_sg.id,
            referenced_security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=args.container_port,
            to_port=args.container_port,
            description="from the load balancer on the container port",
            tags=self.named_tags(f"{name}-tasks-from-alb"),
            opts=self.child_opts(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-https-out",
            security_group_id=service_sg.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to AWS APIs (through endpoints or NAT) and the identity provider",
            tags=self.named_tags(f"{name}-tasks-https-out"),
            opts=self.child_opts(),
        )
        return alb_sg, service_sg

    def _access_log_bucket(self, facts: AccountFacts) -> aws.s3.Bucket:
        """Versioned, public-blocked, TLS-only, SSE-S3 (the only encryption ALB log delivery supports)."""
        name, args = self._label, self._spec
        principal = elb_log_delivery_principal(facts.region, facts.partition)
        bucket, self._log_bucket_policy = private_bucket(
            self,
            f"{name}-alb-logs",
            policy=lambda arn: _access_log_bucket_policy(arn, principal, name, facts.account_id),
            expiration_days=args.access_log_retention_days,
            force_destroy=not args.deletion_protection,
        )
        return bucket

    def _load_balancer(
        self, alb_sg: aws.ec2.SecurityGroup, bucket: aws.s3.Bucket
    ) -> tuple[aws.lb.LoadBalancer, aws.lb.TargetGroup, list[pulumi.Resource], pulumi.Output[str]]:
        name, args = self._label, self._spec
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            ip_address_type="ipv4",
            subnets=list(args.public_subnet_ids),
            security_groups=[alb_sg.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode=args.desync_mitigation_mode,
            enable_deletion_protection=args.deletion_protection,
            enable_http2=True,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.id, prefix=name, enabled=True),
            tags=self.named_tags(f"{name}-alb"),
            opts=self.child_opts(depends_on=[self._log_bucket_policy]),
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            target_type="ip",
            protocol="HTTP",
            port=args.container_port,
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=args.health_check_path,
                protocol="HTTP",
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=self.named_tags(f"{name}-tg"),
            opts=self.child_opts(),
        )
        forward = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
        listeners: list[pulumi.Resource] = []
        if args.certificate_arn:
            listeners.append(
                aws.lb.Listener(
                    f"{name}-https",
                    load_balancer_arn=alb.arn,
                    port=443,
                    protocol="HTTPS",
                    ssl_policy=args.ssl_policy,
                    certificate_arn=args.certificate_arn,
                    default_actions=[forward],
                    tags=self.named_tags(f"{name}-https"),
                    opts=self.child_opts(),
                )
            )
            http_action = aws.lb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                    port="443", protocol="HTTPS", status_code="HTTP_301"
                ),
            )
            url = alb.dns_name.apply(lambda dns: f"https://{dns}")
        else:
            pulumi.log.warn(
                f"WebService {name}: no certificate_arn, so the load balancer serves plain HTTP on port 80. "
                "Set a certificate ARN for anything but development.",
                resource=self,
            )
            http_action = forward
            url = alb.dns_name.apply(lambda dns: f"http://{dns}")
        listeners.append(
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[http_action],
                tags=self.named_tags(f"{name}-http"),
                opts=self.child_opts(),
            )
        )
        return alb, target_group, listeners, url

    # --- scaling and protection -----------------------------------------------------------

    def _autoscaling(
        self,
        cluster_name: pulumi.Output[str],
        service: aws.ecs.Service,
        alb: aws.lb.LoadBalancer,
        target_group: aws.lb.TargetGroup,
    ) -> None:
        name, args = self._label, self._spec
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster_name, "/", service.name),
            min_capacity=args.min_count,
            max_capacity=args.max_count,
            tags=self.named_tags(f"{name}-scaling"),
            opts=self.child_opts(),
        )
        metrics: list[tuple[str, str, float, pulumi.Input[str] | None]] = [
            ("cpu", "ECSServiceAverageCPUUtilization", args.cpu_target_percent, None),
            (
                "requests",
                "ALBRequestCountPerTarget",
                float(args.requests_per_target),
                pulumi.Output.concat(alb.arn_suffix, "/", target_group.arn_suffix),
            ),
        ]
        for label, metric, value, resource_label in metrics:
            aws.appautoscaling.Policy(
                f"{name}-scale-on-{label}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=value,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric, resource_label=resource_label
                    ),
                    scale_in_cooldown=300,
                    scale_out_cooldown=60,
                ),
                opts=self.child_opts(),
            )


def _access_log_bucket_policy(
    bucket_arn: str, principal: dict[str, str], prefix: str, account_id: str
) -> str:
    """TLS-only access, plus ELB's permission to write this account's logs under the prefix."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                tls_only_statement(bucket_arn),
                {
                    "Sid": "ElbWritesAccessLogs",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{prefix}/AWSLogs/{account_id}/*",
                },
            ],
        }
    )
