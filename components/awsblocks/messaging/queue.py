"""`Queue`: an SQS queue with a dead-letter queue by default, encrypted and locked down.

Redrive after `max_receive_count` receives to a DLQ that keeps messages longer than the source;
CMK encryption; a policy that allows only this account and the senders you name and denies
requests without TLS; an alarm on DLQ depth > 0 that notifies the alarm topic you pass. A queue
has ONE policy document, so the topics feeding it are passed as `QueueArgs.subscriptions` and the
queue writes the single policy that lets exactly those topics send.

Example::

    orders = Topic("orders", TopicArgs())
    shipping = Queue("shipping", QueueArgs(
        alarm_topic_arn=alerts.arn, visibility_timeout_seconds=180,
        subscriptions=[TopicFeed(orders.arn, {"type": ["order.paid"]})]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.aws_values import MAX_SQS_RETENTION_SECONDS
from awsblocks.core import (
    AccountFacts,
    Component,
    ComponentArgs,
    account_facts,
    account_root_arn,
    policy_json,
)
from awsblocks.messaging.subscription import Subscription, SubscriptionArgs, TopicFeed, service_send_statement
from awsblocks.security.encryption_key import own_key

DEFAULT_RETENTION_SECONDS = 345_600


@dataclass(frozen=True)
class QueueSender:
    """An AWS service allowed to send to a `Queue` on behalf of one source resource.

    Attributes:
        service: Service short name, e.g. "events" (EventBridge) or "sns".
        source_arn: The one resource (rule, topic, …) the service sends for.
        name: Label used in the policy statement id. Default: its position.
    """

    service: str
    source_arn: pulumi.Input[str]
    name: str | None = None


@dataclass(frozen=True)
class QueueRef:
    """What a consumer needs to know about one SQS queue (a `Queue` or its dead-letter queue).

    Attributes:
        arn: Queue ARN.
        url: Queue URL.
        name: Queue name.
        visibility_timeout_seconds: Visibility timeout, checked against consumer timeouts.
        kms_key_arn: The queue's CMK (consumers need kms:Decrypt on it), or None.
    """

    arn: pulumi.Output[str]
    url: pulumi.Output[str]
    name: pulumi.Output[str]
    visibility_timeout_seconds: int
    kms_key_arn: pulumi.Output[str] | None


@dataclass
class QueueArgs(ComponentArgs):
    """Arguments of `Queue`.

    Attributes:
        alarm_topic_arn: SNS topic the depth alarm notifies (on alarm and on recovery). Required
            whenever the queue has a dead-letter queue or is one.
        visibility_timeout_seconds: How long a received message stays hidden. Must be at least 6 x
            the consumer's timeout (`QueueFunction` checks). Default 30.
        message_retention_seconds: How long unconsumed messages are kept. Default 345600 (4 days).
        receive_wait_time_seconds: Long polling wait. Default 20 (fewer empty receives).
        delay_seconds: Delivery delay of every message. Default 0.
        dead_letter_queue: Create a companion `<name>-dlq` and move messages there after
            `max_receive_count` receives. Default True; False is an explicit opt-out.
        max_receive_count: Receives before a message moves to the DLQ. Default 5 (at least 1).
        dead_letter_retention_seconds: Retention in the DLQ; must be longer than
            `message_retention_seconds`. Default 1209600 (14 days, the SQS maximum).
        dead_letter_visibility_timeout_seconds: Visibility timeout of the DLQ (matters when a
            function consumes it). Default: the source queue's.
        is_dead_letter_queue: This queue is itself a dead-letter queue (e.g. of an EventBridge
            target): no companion DLQ, the depth alarm watches this queue. Default False.
        kms_key_arn: CMK encrypting the queue (and its DLQ). Its policy must let SNS and every
            sender service use it. Default: the component creates one with rotation.
        subscriptions: Topics that feed this queue (`TopicFeed`); the queue's policy lets
            exactly these topics send. Default none.
        senders: Other services allowed to send for one source each (`QueueSender`). Default none.
        tags: Tags for every taggable child (the component adds `component`).
    """

    alarm_topic_arn: pulumi.Input[str] | None = None
    visibility_timeout_seconds: int = 30
    message_retention_seconds: int = DEFAULT_RETENTION_SECONDS
    receive_wait_time_seconds: int = 20
    delay_seconds: int = 0
    dead_letter_queue: bool = True
    max_receive_count: int = 5
    dead_letter_retention_seconds: int = MAX_SQS_RETENTION_SECONDS
    dead_letter_visibility_timeout_seconds: int | None = None
    is_dead_letter_queue: bool = False
    kms_key_arn: pulumi.Input[str] | None = None
    subscriptions: Sequence[TopicFeed] = ()
    senders: Sequence[QueueSender] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_queue_args(name: str, args: QueueArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""

    def check(arg: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"Queue {name}: {arg}={value}; allowed: {low} to {high}")

    check("visibility_timeout_seconds", args.visibility_timeout_seconds, 0, 43_200)
    check("message_retention_seconds", args.message_retention_seconds, 60, MAX_SQS_RETENTION_SECONDS)
    check("receive_wait_time_seconds", args.receive_wait_time_seconds, 0, 20)
    check("delay_seconds", args.delay_seconds, 0, 900)
    if args.dead_letter_queue and args.is_dead_letter_queue:
        raise ValueError(
            f"Queue {name}: dead_letter_queue=True and is_dead_letter_queue=True; a dead-letter queue "
            "has no dead-letter queue of its own: pass dead_letter_queue=False with is_dead_letter_queue=True"
        )
    if args.dead_letter_queue:
        check("max_receive_count", args.max_receive_count, 1, 1000)
        check(
            "dead_letter_retention_seconds", args.dead_letter_retention_seconds, 60, MAX_SQS_RETENTION_SECONDS
        )
        if args.dead_letter_retention_seconds <= args.message_retention_seconds:
            raise ValueError(
                f"Queue {name}: dead_letter_retention_seconds={args.dead_letter_retention_seconds} is not "
                f"longer than message_retention_seconds={args.message_retention_seconds}; allowed: a longer "
                "retention (SQS keeps a moved message's original enqueue time, so a shorter DLQ retention "
                "drops it early)"
            )
        if args.dead_letter_visibility_timeout_seconds is not None:
            check(
                "dead_letter_visibility_timeout_seconds",
                args.dead_letter_visibility_timeout_seconds,
                0,
                43_200,
            )
    if (args.dead_letter_queue or args.is_dead_letter_queue) and args.alarm_topic_arn is None:
        raise ValueError(
            f"Queue {name}: alarm_topic_arn=None; allowed: an SNS topic ARN that the dead-letter depth "
            "alarm notifies (required whenever the queue has a dead-letter queue or is one)"
        )
    labels = [feed.name for feed in args.subscriptions if feed.name]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Queue {name}: subscription names repeat: {labels}; allowed: unique names")


class Queue(Component):
    """An SQS queue with its DLQ, CMK, TLS-only policy and DLQ alarm. See the module docstring.

    Outputs: `arn`, `url`, `name`, `kms_key_arn`, `visibility_timeout_seconds`, `dead_letter_arn`
    and `dead_letter_url` (None without a DLQ). Python helpers: `ref` (a `QueueRef` for
    consumers), `dead_letter` (the DLQ's `QueueRef`, or None), `subscriptions`.
    """

    arn: pulumi.Output[str]
    url: pulumi.Output[str]
    name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    visibility_timeout_seconds: int
    dead_letter_arn: pulumi.Output[str] | None
    dead_letter_url: pulumi.Output[str] | None

    def __init__(self, name: str, args: QueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_queue_args(name, args)
        super().__init__("Queue", name, args.tags, opts, name_prefix=args.name_prefix)
        facts = account_facts(self)
        if args.kms_key_arn is None:
            services = ["sns"] if args.subscriptions else []
            services += [sender.service for sender in args.senders]
            kms_key_arn = own_key(self, f"{name}-queue-key", f"SQS queue {name}", services)
        else:
            kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        self.kms_key_arn = kms_key_arn

        dlq: aws.sqs.Queue | None = None
        redrive_policy: pulumi.Output[str] | None = None
        if args.dead_letter_queue:
            dlq_visibility = args.dead_letter_visibility_timeout_seconds or args.visibility_timeout_seconds
            dlq = aws.sqs.Queue(
                f"{name}-dlq",
                kms_master_key_id=kms_key_arn,
                kms_data_key_reuse_period_seconds=300,
                message_retention_seconds=args.dead_letter_retention_seconds,
                visibility_timeout_seconds=dlq_visibility,
                receive_wait_time_seconds=args.receive_wait_time_seconds,
                tags=self.named_tags(f"{name}-dlq"),
                opts=self.child_opts(),
            )
            aws.sqs.QueuePolicy(
                f"{name}-dlq-policy",
                queue_url=dlq.url,
                policy=policy_json(self._base_statements(facts, dlq.arn)),
                opts=self.child_opts(),
            )
            redrive_policy = pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": args.max_receive_count}
            )
            dead_letter = QueueRef(dlq.arn, dlq.url, dlq.name, dlq_visibility, kms_key_arn)
            self._dead_letter: QueueRef | None = dead_letter
        else:
            self._dead_letter = None

        queue = aws.sqs.Queue(
            f"{name}-queue",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.message_retention_seconds,
            receive_wait_time_seconds=args.receive_wait_time_seconds,
            delay_seconds=args.delay_seconds,
            redrive_policy=redrive_policy,
            tags=self.named_tags(name),
            opts=self.child_opts(),
        )
        if dlq is not None:
            # Only this queue may use the DLQ as its dead-letter target.
            aws.sqs.RedriveAllowPolicy(
                f"{name}-dlq-redrive-allow",
                queue_url=dlq.url,
                redrive_allow_policy=pulumi.Output.json_dumps(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [queue.arn]}
                ),
                opts=self.child_opts(),
            )

        statements = self._base_statements(facts, queue.arn)
        for index, feed in enumerate(args.subscriptions):
            label = feed.name or str(index)
            statements.append(
                Subscription.queue_policy_statement(feed.topic_arn, queue.arn, f"Topic{label}Sends")
            )
        for index, sender in enumerate(args.senders):
            label = sender.name or str(index)
            statements.append(
                service_send_statement(
                    f"{sender.service}{label}Sends",
                    facts.service_principal(sender.service),
                    sender.source_arn,
                    queue.arn,
                )
            )
        policy = aws.sqs.QueuePolicy(
            f"{name}-policy", queue_url=queue.url, policy=policy_json(statements), opts=self.child_opts()
        )
        self._subscriptions = [
            Subscription(
                f"{name}-from-{feed.name or index}",
                SubscriptionArgs(
                    topic_arn=feed.topic_arn,
                    queue_arn=queue.arn,
                    filter_policy=feed.filter_policy,
                    raw_message_delivery=feed.raw_message_delivery,
                ),
                opts=self.child_opts(depends_on=[policy]),
            )
            for index, feed in enumerate(args.subscriptions)
        ]

        watched = dlq if dlq is not None else (queue if args.is_dead_letter_queue else None)
        if watched is not None and args.alarm_topic_arn is not None:
            alarm_name = f"{name}-dlq-depth" if dlq is not None else f"{name}-depth"
            aws.cloudwatch.MetricAlarm(
                alarm_name,
                alarm_description=f"Messages are waiting in the dead-letter queue of {name}: "
                "inspect them, fix the cause, then redrive.",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": watched.name},
                statistic="Maximum",
                period=60,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn],
                tags=self.named_tags(alarm_name),
                opts=self.child_opts(),
            )

        self.arn = queue.arn
        self.url = queue.url
        self.name = queue.name
        self.visibility_timeout_seconds = args.visibility_timeout_seconds
        self.dead_letter_arn = dlq.arn if dlq is not None else None
        self.dead_letter_url = dlq.url if dlq is not None else None
        self._ref = QueueRef(queue.arn, queue.url, queue.name, args.visibility_timeout_seconds, kms_key_arn)
        self.register_outputs(
            {
                "arn": queue.arn,
                "url": queue.url,
                "name": queue.name,
                "kms_key_arn": kms_key_arn,
                "visibility_timeout_seconds": args.visibility_timeout_seconds,
                "dead_letter_arn": self.dead_letter_arn,
                "dead_letter_url": self.dead_letter_url,
            }
        )

    @property
    def ref(self) -> QueueRef:
        """The queue as a consumer needs it (Python helper: `QueueFunctionArgs.queue` takes it)."""
        return self._ref

    @property
    def dead_letter(self) -> QueueRef | None:
        """The dead-letter queue as a consumer needs it, or None (Python helper)."""
        return self._dead_letter

    @property
    def subscriptions(self) -> list[Subscription]:
        """The `Subscription` of each `TopicFeed`, in `QueueArgs.subscriptions` order."""
        return self._subscriptions

    @staticmethod
    def _base_statements(facts: AccountFacts, queue_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
        """Owner-only access and a TLS-only deny; senders are added per queue."""
        return [
            {
                "Sid": "OwnerOnly",
                "Effect": "Allow",
                "Principal": {"AWS": account_root_arn(facts)},
                "Action": [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]


# --- functions -------------------------------------------------------------------------------
