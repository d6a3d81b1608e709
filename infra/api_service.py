"""The API layer: the `app/` container as a `WebService` behind an ALB, and the Cognito pool it trusts.

The service gets exactly the environment `app/settings.py` reads (region, the three table
names, the payments topic ARN, the user pool id and app client id, the issuer and JWKS URL,
whether to serve its documents, the per-user quotas) and exactly the grants it needs: the
actions `app/access.py` declares on each table, index and topic (the calls the service makes,
checked by tests/app/test_api_access.py), and use of those resources' KMS keys. The image is
built from the repository root with `app/Dockerfile`, tagged by content and run by the digest
its push returned (an unchanged app is not redeployed; a rebuilt one cannot fail on an existing
tag), unless `apiImageUri` names a prebuilt image (the delivery pipeline's commit-tagged images).
Prod runs at least two tasks across its AZs, behind a WAF, with MFA on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pulumi
from awsblocks.auth.user_pool import UserPool, UserPoolArgs
from awsblocks.aws_values import fargate_memory_options
from awsblocks.security.iam import Grant, dynamodb_access, kms_use, sns_access
from awsblocks.web.waf import WafArgs
from awsblocks.web.web_service import WebService, WebServiceArgs

from app.access import ACCESS
from infra.config import PROJECT, ConfigError, StackConfig
from infra.payment_chain import PaymentChain
from lambdas.shared import contract

API_NAME = "api"
API_CONTAINER_PORT = 8000
"""The port uvicorn serves `app.main:app` on inside the container (app/Dockerfile)."""
API_USER = "10001:10001"
"""The unprivileged user app/Dockerfile creates (numeric, so ECS can run it without /etc/passwd)."""
HEALTH_CHECK_PATH = "/healthz"
DOCKERFILE = "app/Dockerfile"
"""Relative to the build context, the repository root (the image needs `lambdas/shared`)."""

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_AWS_REGION = "AWS_REGION"
ENV_COGNITO_ISSUER = "COGNITO_ISSUER"
ENV_COGNITO_JWKS_URL = "COGNITO_JWKS_URL"
ENV_API_DOCS = "API_DOCS"
ENV_QUOTA_PAYMENTS_PER_MINUTE = "QUOTA_PAYMENTS_PER_MINUTE"
ENV_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY = "QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY"
ENV_QUOTA_CAMPAIGNS_PER_DAY = "QUOTA_CAMPAIGNS_PER_DAY"
"""Names `app/settings.py` reads besides the contract's (a test keeps them in step)."""


class TableLike(Protocol):
    """What the API needs of a table (`awsblocks.data.table.Table` has it)."""

    @property
    def name(self) -> pulumi.Output[str]: ...
    @property
    def arn(self) -> pulumi.Output[str]: ...
    @property
    def index_arns(self) -> list[pulumi.Output[str]]: ...
    @property
    def kms_key_arn(self) -> pulumi.Output[str]: ...


class TopicLike(Protocol):
    """What the API needs of a topic (`awsblocks.messaging.topic.Topic` has it)."""

    @property
    def arn(self) -> pulumi.Output[str]: ...
    @property
    def kms_key_arn(self) -> pulumi.Output[str]: ...


@dataclass(frozen=True)
class ApiBackends:
    """The data stores and topic the API uses, declared by the payment-chain layer.

    Attributes:
        fundings_table: Campaigns.
        payments_table: Payments.
        idempotency_table: Idempotency records (shared with the functions).
        payments_topic: Where the API publishes `payment.requested`.
    """

    fundings_table: TableLike
    payments_table: TableLike
    idempotency_table: TableLike
    payments_topic: TopicLike


def api_problems(cfg: StackConfig) -> list[str]:
    """Config combinations the API layer refuses (checked before anything is declared)."""
    problems: list[str] = []
    memory_options = fargate_memory_options(cfg.api_cpu)
    if cfg.api_memory_mb not in memory_options:
        allowed = ", ".join(map(str, memory_options))
        problems.append(
            f"{PROJECT}:apiMemoryMb: {cfg.api_memory_mb} is not allowed with apiCpu {cfg.api_cpu}; "
            f"allowed by Fargate: {allowed}"
        )
    if not cfg.api_min_count <= cfg.api_desired_count <= cfg.api_max_count:
        problems.append(
            f"{PROJECT}:apiDesiredCount: {cfg.api_desired_count} is outside apiMinCount "
            f"{cfg.api_min_count} .. apiMaxCount {cfg.api_max_count}; allowed: min <= desired <= max"
        )
    if cfg.is_prod and cfg.api_min_count < 2:
        problems.append(
            f"{PROJECT}:apiMinCount: {cfg.api_min_count} on a prod stack; allowed: 2 or more "
            "(the API must survive the loss of a task or an AZ)"
        )
    if cfg.is_prod and cfg.az_count < 2:
        problems.append(f"{PROJECT}:azCount: {cfg.az_count} on a prod stack; allowed: 2 or more for the API")
    return problems


def api_grants(backends: ApiBackends, access: dict[str, tuple[str, ...]] = ACCESS) -> list[Grant]:
    """Exactly what the API calls (`app/access.py`): per table its item actions and per index its
    reads, Publish on the payments topic, and use of those resources' KMS keys. Nothing else: no
    Scan or DeleteItem on payments, no write it does not make."""
    tables = {
        contract.FUNDINGS_TABLE.env_var: ("Fundings", backends.fundings_table),
        contract.PAYMENTS_TABLE.env_var: ("Payments", backends.payments_table),
        contract.IDEMPOTENCY_TABLE.env_var: ("Idempotency", backends.idempotency_table),
    }
    topics = {contract.ENV_PAYMENTS_TOPIC_ARN: ("Payments", backends.payments_topic)}
    unknown = sorted(set(access) - set(tables) - set(topics))
    if unknown:
        raise ValueError(
            f"app/access.py ACCESS names {unknown}, which the API layer does not give the service; "
            f"allowed: {', '.join(sorted({*tables, *topics}))}"
        )
    grants: list[Grant] = []
    keys: list[pulumi.Input[str]] = []
    for variable, (label, table) in tables.items():
        if variable not in access:
            continue
        on_table = [action for action in access[variable] if "@" not in action]
        on_indexes: dict[str, list[str]] = {}
        for action in access[variable]:
            if "@" in action:
                name, index = action.split("@", 1)
                on_indexes.setdefault(index, []).append(name)
        grants += dynamodb_access(table.arn, on_table, indexes=on_indexes, label=label)
        keys.append(table.kms_key_arn)
    for variable, (label, topic) in topics.items():
        if variable in access:
            grants.append(sns_access(topic.arn, access[variable], label=label))
            keys.append(topic.kms_key_arn)
    grants.append(kms_use(keys, label="TablesAndTopic"))
    return grants


def backends_of(chain: PaymentChain) -> ApiBackends:
    """The API's tables and topic, as the payment-chain layer declared them."""
    return ApiBackends(
        fundings_table=chain.fundings_table,
        payments_table=chain.payments_table,
        idempotency_table=chain.idempotency_table,
        payments_topic=chain.payments_topic,
    )


def declare_user_pool(cfg: StackConfig, *, opts: pulumi.ResourceOptions) -> UserPool:
    """The Cognito pool whose tokens the API accepts (declared first: the notifier reads it too)."""
    return UserPool(
        "users",
        UserPoolArgs(
            name_prefix=cfg.name_prefix,
            mfa=cfg.user_pool_mfa,  # type: ignore[arg-type]  # validated by infra.config
            allow_password_auth=cfg.user_pool_password_auth,
            deletion_protection=cfg.deletion_protection,
        ),
        opts=opts,
    )


def api_environment(cfg: StackConfig, backends: ApiBackends, users: UserPool) -> dict[str, pulumi.Input[str]]:
    """Exactly the variables `app/settings.py` reads (AWS_ENDPOINT_URL stays unset on AWS)."""
    return {
        ENV_AWS_REGION: cfg.region,
        contract.FUNDINGS_TABLE.env_var: backends.fundings_table.name,
        contract.PAYMENTS_TABLE.env_var: backends.payments_table.name,
        contract.IDEMPOTENCY_TABLE.env_var: backends.idempotency_table.name,
        contract.ENV_PAYMENTS_TOPIC_ARN: backends.payments_topic.arn,
        contract.ENV_COGNITO_USER_POOL_ID: users.user_pool_id,
        contract.ENV_COGNITO_APP_CLIENT_ID: users.client_id,
        ENV_COGNITO_ISSUER: users.issuer,
        ENV_COGNITO_JWKS_URL: users.jwks_url,
        ENV_API_DOCS: "true" if cfg.api_docs else "false",
        ENV_QUOTA_PAYMENTS_PER_MINUTE: str(cfg.quota_payments_per_minute),
        ENV_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY: str(cfg.quota_payments_per_campaign_per_day),
        ENV_QUOTA_CAMPAIGNS_PER_DAY: str(cfg.quota_campaigns_per_day),
    }


def declare_api_service(
    cfg: StackConfig,
    backends: ApiBackends,
    users: UserPool,
    *,
    vpc_id: pulumi.Input[str],
    public_subnet_ids: Sequence[pulumi.Input[str]],
    private_subnet_ids: Sequence[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> WebService:
    """Declare the API web service and export what clients and operators need."""
    if problems := api_problems(cfg):
        raise ConfigError(cfg.stack, problems)
    service = WebService(
        API_NAME,
        WebServiceArgs(
            name_prefix=cfg.name_prefix,
            vpc_id=vpc_id,
            public_subnet_ids=public_subnet_ids,
            private_subnet_ids=private_subnet_ids,
            build_context=None if cfg.api_image_uri else str(REPO_ROOT),
            dockerfile=DOCKERFILE,
            image_uri=cfg.api_image_uri or None,
            # One owner of the running image: the delivery pipeline, when the stack has one.
            deployed_by_pipeline=cfg.pipeline_enabled,
            container_port=API_CONTAINER_PORT,
            user=API_USER,
            health_check_path=HEALTH_CHECK_PATH,
            cpu=cfg.api_cpu,
            memory_mb=cfg.api_memory_mb,
            environment=api_environment(cfg, backends, users),
            grants=api_grants(backends),
            desired_count=cfg.api_desired_count,
            spot=cfg.api_spot,
            min_count=cfg.api_min_count,
            max_count=cfg.api_max_count,
            certificate_arn=cfg.certificate_arn or None,
            waf=WafArgs(rate_limit=cfg.waf_rate_limit, log_retention_days=cfg.log_retention_days)
            if cfg.waf_enabled
            else None,
            deletion_protection=cfg.deletion_protection,
            log_retention_days=cfg.log_retention_days,
            kms_key_arn=kms_key_arn,
        ),
        opts=opts,
    )
    pulumi.export("apiUrl", service.url)
    pulumi.export("apiRepositoryUrl", service.repository_url)
    pulumi.export("apiImage", service.image_uri)
    pulumi.export("apiClusterName", service.cluster_name)
    pulumi.export("apiServiceName", service.service_name)
    pulumi.export("userPoolId", users.user_pool_id)
    pulumi.export("userPoolClientId", users.client_id)
    pulumi.export("userPoolIssuer", users.issuer)
    return service
