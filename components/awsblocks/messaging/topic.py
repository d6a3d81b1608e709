"""`Topic`: an SNS topic encrypted with a customer-managed key (rotation on).

Its policy allows only this account (plus the AWS services you name, for this account only) and
denies requests without TLS. Optional email subscriptions (for alerts).

Example::

    alerts = Topic("alerts", TopicArgs(publisher_services=["cloudwatch"], email_subscriptions=["ops@x.com"]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.core import (
    EMAIL_ADDRESS,
    Component,
    ComponentArgs,
    account_facts,
    account_root_arn,
    policy_json,
)
from awsblocks.security.encryption_key import own_key


@dataclass
class TopicArgs(ComponentArgs):
    """Arguments of `Topic`.

    Attributes:
        kms_key_arn: CMK that encrypts the topic. Its policy must let every AWS service that
            publishes to the topic use it. Default: the component creates one with rotation,
            usable by SNS, SQS and `publisher_services`.
        publisher_services: AWS services (short names such as "cloudwatch", "events") allowed to
            publish, only on behalf of this account. Default none (only this account's IAM
            principals may publish).
        email_subscriptions: Email addresses subscribed to every message (each must confirm
            the subscription from the email AWS sends). Default none.
        tags: Tags for the topic and its key (the component adds `component`).
    """

    kms_key_arn: pulumi.Input[str] | None = None
    publisher_services: Sequence[str] = ()
    email_subscriptions: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


class Topic(Component):
    """An SNS topic: CMK-encrypted, owner-only, TLS-only. Outputs: `arn`, `name`, `kms_key_arn`."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        for address in args.email_subscriptions:
            if not EMAIL_ADDRESS.match(address):
                raise ValueError(
                    f"Topic {name}: email_subscriptions has {address!r}; allowed: an email address"
                )
        super().__init__("Topic", name, args.tags, opts, name_prefix=args.name_prefix)
        facts = account_facts(self)
        if args.kms_key_arn is None:
            kms_key_arn = own_key(
                self, f"{name}-topic-key", f"SNS topic {name}", ["sns", "sqs", *args.publisher_services]
            )
        else:
            kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        topic = aws.sns.Topic(
            f"{name}-topic", kms_master_key_id=kms_key_arn, tags=self.named_tags(name), opts=self.child_opts()
        )
        statements: list[dict[str, Any]] = [
            {
                "Sid": "OwnerOnly",
                "Effect": "Allow",
                "Principal": {"AWS": account_root_arn(facts)},
                "Action": [
                    "sns:GetTopicAttributes",
                    "sns:ListSubscriptionsByTopic",
                    "sns:Publish",
                    "sns:Subscribe",
                ],
                "Resource": topic.arn,
            }
        ]
        if args.publisher_services:
            statements.append(
                {
                    "Sid": "ServicesPublishForThisAccount",
                    "Effect": "Allow",
                    "Principal": {
                        "Service": sorted({facts.service_principal(s) for s in args.publisher_services})
                    },
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": facts.account_id}},
                }
            )
        statements.append(
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:*",
                "Resource": topic.arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
        aws.sns.TopicPolicy(
            f"{name}-policy", arn=topic.arn, policy=policy_json(statements), opts=self.child_opts()
        )
        for index, address in enumerate(args.email_subscriptions):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=topic.arn,
                protocol="email",
                endpoint=address,
                opts=self.child_opts(),
            )
        self.arn = topic.arn
        self.name = topic.name
        self.kms_key_arn = kms_key_arn
        self.register_outputs({"arn": topic.arn, "name": topic.name, "kms_key_arn": kms_key_arn})


# --- Subscription ----------------------------------------------------------------------------
