"""The crowdfunding stack: validated config first, then the components composed for this product."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from awsblocks.delivery.container_pipeline import ContainerPipeline
from awsblocks.network.vpc import Network, NetworkArgs
from awsblocks.observability.observability import Observability
from awsblocks.security.encryption_key import EncryptionKey, EncryptionKeyArgs
from awsblocks.web.web_service import WebService

from infra.api_service import api_problems, backends_of, declare_api_service, declare_user_pool
from infra.config import PROJECT, ConfigError, StackConfig, load
from infra.observability import declare_observability
from infra.payment_chain import PaymentChain, UserPoolRef, chain_problems, declare_payment_chain
from infra.pipeline import declare_pipeline, pipeline_problems

EARLIER_TYPE_TOKENS: dict[str, str] = {
    f"awsblocks:index:{name}": f"crowdfunding:{module}:{name}"
    for module, names in {
        "auth": ("UserPool",),
        "compute": ("WebService",),
        "delivery": ("ContainerPipeline",),
        "ledger": ("Table",),
        "messaging": (
            "Topic", "Subscription", "Queue", "EmailIdentity",
            "Function", "QueueFunction", "ScheduledFunction",
        ),
        "network": ("Network",),
        "observability": ("Observability",),
        "security": ("EncryptionKey",),
        "signing": ("CodeSigning", "SignedLayer"),
    }.items()
    for name in names
}  # fmt: skip
"""The type token each component had before the library became `awsblocks` (0.1, in this repo).

Stacks deployed then hold their components under these tokens; the alias lets `pulumi up` move
each component, and with it every child's URN, instead of replacing the whole stack."""


def alias_earlier_tokens(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    """Give a library component the alias of its earlier type token (children inherit the change).

    A resource transformation, not an engine-side transform: it runs in the program, so the
    offline synthesis (Pulumi's mocks run no engine transforms) records the same aliases that
    `pulumi up` sends.
    """
    earlier = EARLIER_TYPE_TOKENS.get(args.type_)
    if earlier is None:
        return None
    alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=earlier)])
    return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, alias))


def base_tags(cfg: StackConfig) -> dict[str, str]:
    """Tags the provider applies to every taggable resource (components add `component`)."""
    return {"project": PROJECT, "stack": cfg.stack, "managed-by": "pulumi"}


@dataclass
class Platform:
    """What the stack declared, for the layers built on top and for tests."""

    config: StackConfig
    provider: aws.Provider
    key: EncryptionKey
    network: Network
    payment_chain: PaymentChain
    api: WebService
    observability: Observability
    pipeline: ContainerPipeline | None = None


def build(cfg: StackConfig) -> Platform:
    """Declare every resource of the stack for a validated config."""
    if problems := chain_problems(cfg) + api_problems(cfg) + pipeline_problems(cfg):
        raise ConfigError(cfg.stack, problems)
    provider = aws.Provider(
        "aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=base_tags(cfg)),
    )
    opts = pulumi.ResourceOptions(providers=[provider], transformations=[alias_earlier_tokens])
    zones = aws.get_availability_zones(state="available", opts=pulumi.InvokeOptions(provider=provider))
    names = sorted(zones.names)
    if len(names) < cfg.az_count:
        raise ConfigError(
            cfg.stack,
            [f"{PROJECT}:azCount: {cfg.az_count} is more than region {cfg.region} offers ({len(names)})"],
        )

    key = EncryptionKey(
        "platform",
        EncryptionKeyArgs(
            name_prefix=cfg.name_prefix,
            description=f"{PROJECT}-{cfg.stack}: logs, topics, queues, tables",
            # codestar-notifications: pipeline notifications into the encrypted ops-alerts topic.
            service_principals=(
                "sns",
                "sqs",
                "events",
                "cloudwatch",
                *(("codestar-notifications",) if cfg.pipeline_enabled else ()),
            ),
            allow_cloudwatch_logs=True,
        ),
        opts=opts,
    )
    network = Network(
        "network",
        NetworkArgs(
            name_prefix=cfg.name_prefix,
            availability_zones=names[: cfg.az_count],
            nat_strategy=cfg.nat_strategy,  # type: ignore[arg-type]  # validated by infra.config
            cidr=cfg.vpc_cidr,
            interface_endpoints=cfg.interface_endpoints,
            flow_log_retention_days=cfg.flow_log_retention_days,
            flow_log_kms_key_arn=key.key_arn,
        ),
        opts=opts,
    )
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("publicSubnetIds", network.public_subnet_ids)
    users = declare_user_pool(cfg, opts=opts)
    payment_chain = declare_payment_chain(
        cfg,
        platform_key_arn=key.key_arn,
        opts=opts,
        user_pool=UserPoolRef(id=users.user_pool_id, arn=users.user_pool_arn),
    )
    api = declare_api_service(
        cfg,
        backends_of(payment_chain),
        users,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        private_subnet_ids=network.private_subnet_ids,
        kms_key_arn=key.key_arn,
        opts=opts,
    )
    observability = declare_observability(cfg, payment_chain, api, opts=opts)
    pipeline = declare_pipeline(
        cfg, api, kms_key_arn=key.key_arn, alert_topic_arn=payment_chain.alerts_topic.arn, opts=opts
    )
    return Platform(
        config=cfg,
        provider=provider,
        key=key,
        network=network,
        payment_chain=payment_chain,
        api=api,
        observability=observability,
        pipeline=pipeline,
    )


def main() -> None:
    """Program entry: config errors stop the run before any resource is declared."""
    try:
        cfg = load()
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
    build(cfg)
