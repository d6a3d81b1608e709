"""`Subscription`: SNS→SQS with raw delivery and a filter policy on message attributes.

`Queue` creates one per `TopicFeed` of `QueueArgs.subscriptions`, so the queue's single policy
lets exactly those topics send; declare a `Subscription` yourself only for a queue you do not own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.core import SID_UNSAFE, Component, ComponentArgs


@dataclass(frozen=True)
class TopicFeed:
    """One topic feeding a `Queue` (an entry of `QueueArgs.subscriptions`).

    Attributes:
        topic_arn: ARN of the SNS topic.
        filter_policy: Filter on message attributes, e.g. {"type": ["order.paid"]}. Default
            none: every message of the topic.
        raw_message_delivery: Deliver the message body as published (no SNS envelope). Default True.
        name: Suffix of the subscription's logical name. Default: its position ("0", "1", …).
    """

    topic_arn: pulumi.Input[str]
    filter_policy: Mapping[str, Any] | None = None
    raw_message_delivery: bool = True
    name: str | None = None


@dataclass
class SubscriptionArgs(ComponentArgs):
    """Arguments of `Subscription`.

    Attributes:
        topic_arn: ARN of the SNS topic.
        queue_arn: ARN of the SQS queue receiving the messages. The queue's policy must contain
            `Subscription.queue_policy_statement(topic_arn, queue_arn)`; `Queue` writes it for
            every entry of `QueueArgs.subscriptions`.
        filter_policy: Filter on message attributes, e.g. {"type": ["a", "b"]}. Default none.
        raw_message_delivery: Deliver the body as published, without the SNS JSON envelope.
            Default True.
    """

    topic_arn: pulumi.Input[str]
    queue_arn: pulumi.Input[str]
    filter_policy: Mapping[str, Any] | None = None
    raw_message_delivery: bool = True


class Subscription(Component):
    """An SNS→SQS subscription with raw delivery and a message-attribute filter. Output: `arn`."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SubscriptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.filter_policy is not None and (
            not isinstance(args.filter_policy, Mapping) or not args.filter_policy
        ):
            raise ValueError(
                f"Subscription {name}: filter_policy={args.filter_policy!r}; "
                "allowed: None or a non-empty mapping of attribute name to rule list"
            )
        super().__init__("Subscription", name, None, opts, name_prefix=args.name_prefix)
        subscription = aws.sns.TopicSubscription(
            f"{name}-sub",
            topic=args.topic_arn,
            protocol="sqs",
            endpoint=args.queue_arn,
            raw_message_delivery=args.raw_message_delivery,
            filter_policy=json.dumps(args.filter_policy, sort_keys=True) if args.filter_policy else None,
            filter_policy_scope="MessageAttributes" if args.filter_policy else None,
            opts=self.child_opts(),
        )
        self.arn = subscription.arn
        self.register_outputs({"arn": subscription.arn})

    @staticmethod
    def queue_policy_statement(
        topic_arn: pulumi.Input[str], queue_arn: pulumi.Input[str], sid: str = "TopicSends"
    ) -> dict[str, Any]:
        """The queue-policy statement that lets exactly this topic send to the queue."""
        return service_send_statement(sid, "sns.amazonaws.com", topic_arn, queue_arn)


def service_send_statement(
    sid: str, principal: str, source_arn: pulumi.Input[str], queue_arn: pulumi.Input[str]
) -> dict[str, Any]:
    return {
        "Sid": SID_UNSAFE.sub("", sid),
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }


# --- Queue -----------------------------------------------------------------------------------
