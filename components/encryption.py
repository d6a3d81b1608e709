"""`EncryptionKey`: a customer-managed KMS key with rotation and a least-privilege key policy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.base import Component, account_facts


@dataclass
class EncryptionKeyArgs:
    """Arguments of `EncryptionKey`.

    Attributes:
        description: What the key protects (shown in the KMS console).
        service_principals: Services (short names such as "sns", "sqs", "events", "cloudwatch")
            allowed to generate data keys and decrypt, only on behalf of this account.
            SNS→SQS delivery to an encrypted queue needs "sns"; EventBridge targets need "events".
        allow_cloudwatch_logs: Let CloudWatch Logs in this region encrypt log groups of this
            account with the key. Default False.
        deletion_window_in_days: Waiting period before a deleted key is destroyed. Default 30.
        tags: Tags for the key (the component adds `component`).
    """

    description: str
    service_principals: Sequence[str] = ()
    allow_cloudwatch_logs: bool = False
    deletion_window_in_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)


class EncryptionKey(Component):
    """A CMK with automatic rotation on. Outputs: `key_arn`, `key_id`, `alias_name`."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if not 7 <= args.deletion_window_in_days <= 30:
            window = args.deletion_window_in_days
            raise ValueError(f"EncryptionKey {name}: deletion_window_in_days={window}; allowed: 7 to 30")
        super().__init__("security", "EncryptionKey", name, args.tags, opts)
        facts = account_facts(self)
        statements: list[dict[str, object]] = [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{facts.partition}:iam::{facts.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
        if args.service_principals:
            statements.append(
                {
                    "Sid": "ServicesUseForThisAccount",
                    "Effect": "Allow",
                    "Principal": {
                        "Service": sorted(facts.service_principal(s) for s in args.service_principals)
                    },
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": facts.account_id}},
                }
            )
        if args.allow_cloudwatch_logs:
            statements.append(
                {
                    "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                    "Effect": "Allow",
                    "Principal": {"Service": facts.service_principal("logs")},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": facts.arn("logs", "log-group:*")}
                    },
                }
            )
        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_in_days,
            policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            tags=self.tags,
            opts=self.child_opts(),
        )
        alias_name = f"alias/{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
        alias = aws.kms.Alias(
            f"{name}-alias", name=alias_name, target_key_id=key.key_id, opts=self.child_opts()
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"key_arn": key.arn, "key_id": key.key_id, "alias_name": alias.name})


def key_arn_or_own(
    owner: Component,
    given: pulumi.Input[str] | None,
    name: str,
    description: str,
    *,
    services: Sequence[str] = (),
    logs: bool = False,
) -> pulumi.Output[str]:
    """The key ARN a component was given, or a CMK of its own: secure by default, shareable on request.

    Components take an optional key so a stack can share one key across them (each CMK costs
    about $1 a month); without one they create their own `EncryptionKey` child named `name`.
    """
    if given is not None:
        return pulumi.Output.from_input(given)
    key = EncryptionKey(
        name,
        EncryptionKeyArgs(
            description=description,
            service_principals=tuple(sorted(set(services))),
            allow_cloudwatch_logs=logs,
            tags=owner.tags,
        ),
        opts=owner.child_opts(),
    )
    return key.key_arn
