"""Event pipelines on SNS, SQS, Lambda and EventBridge, secure and reliable by default.

- `Topic`: SNS topic encrypted with a customer-managed key (rotation on); its policy allows
  only this account (plus the AWS services you name, for this account only) and denies
  requests without TLS. Optional email subscriptions (for alerts).
- `Queue`: SQS queue **with a dead-letter queue by default** (redrive after `max_receive_count`
  receives, DLQ keeps messages longer than the source), CMK encryption, a policy that allows
  only this account and the senders you name and denies requests without TLS, and an alarm on
  DLQ depth > 0 that notifies the alarm topic you pass. A queue has ONE policy document, so the
  topics feeding it are passed as `QueueArgs.subscriptions` and the queue writes the single
  policy that lets exactly those topics send.
- `Subscription`: SNS→SQS with raw delivery and a filter policy on message attributes
  (`Queue` creates one per entry of `QueueArgs.subscriptions`).
- `QueueFunction`: a Lambda function consuming a queue with partial batch failures
  (`ReportBatchItemFailures`). Its role holds only the `components.iam.Grant`s you declare
  (each names its actions and resources), plus writing its own logs and consuming its queue.
  It refuses a queue whose visibility timeout is below 6 x the function timeout.
- `Function`: the same function without a trigger (invoked by other functions).
- `ScheduledFunction`: a Lambda function on an EventBridge schedule with a retry policy and a
  dead-letter queue (for events EventBridge could not deliver and invocations that failed).
- `EmailIdentity`: an SES sender identity a function may be granted to send as.

Every function kind takes `FunctionArgs.code_signing` (a `components.signing.CodeSigning`'s
`ref`): its .zip is then uploaded, signed by AWS Signer and deployed from the signed copy under
an enforcing code signing configuration. Without it the function deploys its archive unsigned,
which the policy pack's `lambda-code-signing` rule reports.

Example (a pipeline of its own, reading only these docstrings)::

    alerts = Topic("alerts", TopicArgs(publisher_services=["cloudwatch"], email_subscriptions=["ops@x.com"]))
    orders = Topic("orders", TopicArgs())
    shipping = Queue("shipping", QueueArgs(
        alarm_topic_arn=alerts.arn, visibility_timeout_seconds=180,
        subscriptions=[TopicFeed(orders.arn, {"type": ["order.paid"]})]))
    table = Table("shipments", TableArgs(partition_key="orderId"))
    QueueFunction("shipper", QueueFunctionArgs(
        queue=shipping, code="build/shipper.zip", handler="shipper.handler", timeout_seconds=30,
        grants=[iam.dynamodb_read_write(table.arn, table.index_arns), iam.sns_publish(orders.arn),
                iam.kms_use([table.kms_key_arn, orders.kms_key_arn])]))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.base import AccountFacts, Component, account_facts
from components.encryption import key_arn_or_own
from components.iam import Grant, kms_decrypt, kms_use, logs_write, policy_document, sqs_consume, sqs_send
from components.signing import CodeSigningRef, check_signable, sign_archive

PYTHON_RUNTIMES: tuple[str, ...] = ("python3.11", "python3.12", "python3.13")
"""Python runtimes AWS Lambda currently supports (not deprecated)."""
ARCHITECTURES: tuple[str, ...] = ("arm64", "x86_64")
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
)  # fmt: skip
VISIBILITY_TO_TIMEOUT_RATIO = 6
"""AWS guidance: a queue's visibility timeout is at least 6 x its consumer's timeout, so a
message is not redelivered while a (retried) invocation still holds it."""
MAX_SQS_RETENTION_SECONDS = 1_209_600
DEFAULT_RETENTION_SECONDS = 345_600
SES_SEND_ACTIONS: tuple[str, ...] = ("ses:SendEmail", "ses:SendRawEmail")
_SID = re.compile(r"[^A-Za-z0-9]")
XRAY_WRITE = Grant(
    "XRayTraces", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), ("*",), any_resource=True
)
"""Active tracing: the role uploads trace segments (X-Ray has no resource-level permissions)."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _policy(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A JSON policy document from statements whose values may be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def _account_root(facts: AccountFacts) -> str:
    return f"arn:{facts.partition}:iam::{facts.account_id}:root"


def _own_key(
    component: Component, name: str, description: str, services: Sequence[str], *, logs: bool = False
) -> pulumi.Output[str]:
    return key_arn_or_own(component, None, name, description, services=services, logs=logs)


# --- Topic -----------------------------------------------------------------------------------


@dataclass
class TopicArgs:
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
            if not _EMAIL.match(address):
                raise ValueError(
                    f"Topic {name}: email_subscriptions has {address!r}; allowed: an email address"
                )
        super().__init__("messaging", "Topic", name, args.tags, opts)
        facts = account_facts(self)
        if args.kms_key_arn is None:
            kms_key_arn = _own_key(
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
                "Principal": {"AWS": _account_root(facts)},
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
            f"{name}-policy", arn=topic.arn, policy=_policy(statements), opts=self.child_opts()
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
class SubscriptionArgs:
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
        super().__init__("messaging", "Subscription", name, None, opts)
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
        return _service_send_statement(sid, "sns.amazonaws.com", topic_arn, queue_arn)


def _service_send_statement(
    sid: str, principal: str, source_arn: pulumi.Input[str], queue_arn: pulumi.Input[str]
) -> dict[str, Any]:
    return {
        "Sid": _SID.sub("", sid),
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }


# --- Queue -----------------------------------------------------------------------------------


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
class QueueArgs:
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

    Outputs: `arn`, `url`, `name`, `kms_key_arn`, `visibility_timeout_seconds`, `ref` (a
    `QueueRef` for consumers), `dead_letter` (the DLQ's `QueueRef`, or None), `subscriptions`.
    """

    arn: pulumi.Output[str]
    url: pulumi.Output[str]
    name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    visibility_timeout_seconds: int
    ref: QueueRef
    dead_letter: QueueRef | None
    subscriptions: list[Subscription]

    def __init__(self, name: str, args: QueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_queue_args(name, args)
        super().__init__("messaging", "Queue", name, args.tags, opts)
        facts = account_facts(self)
        if args.kms_key_arn is None:
            services = ["sns"] if args.subscriptions else []
            services += [sender.service for sender in args.senders]
            kms_key_arn = _own_key(self, f"{name}-queue-key", f"SQS queue {name}", services)
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
                policy=_policy(self._base_statements(facts, dlq.arn)),
                opts=self.child_opts(),
            )
            redrive_policy = pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": args.max_receive_count}
            )
            self.dead_letter = QueueRef(dlq.arn, dlq.url, dlq.name, dlq_visibility, kms_key_arn)
        else:
            self.dead_letter = None

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
                _service_send_statement(
                    f"{sender.service}{label}Sends",
                    facts.service_principal(sender.service),
                    sender.source_arn,
                    queue.arn,
                )
            )
        policy = aws.sqs.QueuePolicy(
            f"{name}-policy", queue_url=queue.url, policy=_policy(statements), opts=self.child_opts()
        )
        self.subscriptions = [
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
        self.ref = QueueRef(queue.arn, queue.url, queue.name, args.visibility_timeout_seconds, kms_key_arn)
        self.register_outputs(
            {
                "arn": queue.arn,
                "url": queue.url,
                "name": queue.name,
                "kms_key_arn": kms_key_arn,
                "dead_letter_arn": dlq.arn if dlq is not None else None,
                "dead_letter_url": dlq.url if dlq is not None else None,
            }
        )

    @staticmethod
    def _base_statements(facts: AccountFacts, queue_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
        """Owner-only access and a TLS-only deny; senders are added per queue."""
        return [
            {
                "Sid": "OwnerOnly",
                "Effect": "Allow",
                "Principal": {"AWS": _account_root(facts)},
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


@dataclass(kw_only=True)
class FunctionArgs:
    """What every function of this module takes.

    Attributes:
        code: The deployment package: a path to a .zip file or a directory, or a `pulumi.Archive`.
        handler: Entry point, "module.function".
        runtime: A current Python runtime: python3.11, python3.12 or python3.13. Default python3.12.
        architecture: "arm64" (cheaper per GB-second) or "x86_64"; layers must match. Default arm64.
        timeout_seconds: Function timeout, 1 to 900. Default 30.
        memory_mb: Memory, 128 to 10240 MB. Default 256.
        environment: Environment variables (values may be Outputs). Default none.
        layers: Layer version ARNs. Default none.
        grants: The only permissions the role holds (`components.iam` grants: tables, topics,
            queues, functions and the KMS keys encrypting them) besides writing its own logs
            (and consuming its queue, for `QueueFunction`). Default none.
        log_retention_days: Retention of the function's own log group. Default 30.
        log_kms_key_arn: CMK for the log group (its policy must allow CloudWatch Logs).
            Default: the component creates one with rotation.
        reserved_concurrency: Reserved concurrent executions: capacity no other function of the
            account can take (and the function's ceiling). Default none (unreserved).
        tracing: Record X-Ray traces (`tracing_config` Active, and the role may upload segments).
            The service records each invocation; no SDK runs in the function, so no cold-start
            cost. Default True.
        environment_kms_key_arn: CMK that encrypts the environment variables at rest (the role
            may decrypt with it). Default: the log group's key (`log_kms_key_arn`, or the key the
            component creates for its logs), so no extra key is created.
        description: Shown in the Lambda console. Default empty.
        code_signing: The stack's `components.signing.CodeSigning` (its `ref`). When given, `code`
            must be a .zip path: it is uploaded to the signing bucket, that object version is
            signed by an AWS Signer job, and the function deploys from the SIGNED object with the
            enforcing code signing configuration attached (Lambda then refuses any package or
            layer the profile did not sign: every layer must be a `SignedLayer`). Default none
            (unsigned; the policy pack's `lambda-code-signing` rule flags it).
        tags: Tags for every taggable child (the component adds `component`).
    """

    code: str | pulumi.Archive
    handler: str
    runtime: str = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    timeout_seconds: int = 30
    memory_mb: int = 256
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    layers: Sequence[pulumi.Input[str]] = ()
    grants: Sequence[Grant] = ()
    log_retention_days: int = 30
    log_kms_key_arn: pulumi.Input[str] | None = None
    reserved_concurrency: int | None = None
    tracing: bool = True
    environment_kms_key_arn: pulumi.Input[str] | None = None
    description: str = ""
    code_signing: CodeSigningRef | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class QueueFunctionArgs(FunctionArgs):
    """Arguments of `QueueFunction` (plus every attribute of `FunctionArgs`).

    Attributes:
        queue: The queue consumed: a `Queue` (its main queue) or a `QueueRef` (e.g. `queue.dead_letter`).
            Its visibility timeout must be ≥ 6 x `timeout_seconds`.
        batch_size: Records per invocation, 1 to 10000 (above 10 needs a batching window). Default 10.
        batching_window_seconds: Wait up to this long to fill a batch, 0 to 300. Default 0.
        maximum_concurrency: Cap on concurrent invocations from this queue, 2 to 1000. Default none
            (up to the account's concurrency).
    """

    queue: Queue | QueueRef
    batch_size: int = 10
    batching_window_seconds: int = 0
    maximum_concurrency: int | None = None


@dataclass(kw_only=True)
class ScheduledFunctionArgs(FunctionArgs):
    """Arguments of `ScheduledFunction` (plus every attribute of `FunctionArgs`).

    Attributes:
        schedule_expression: EventBridge schedule, "rate(5 minutes)" or "cron(0 * * * ? *)".
        alarm_topic_arn: SNS topic the dead-letter depth alarm notifies.
        retry_attempts: EventBridge delivery retries, 0 to 185. Default 2.
        maximum_event_age_seconds: Give up delivering an event after this long, 60 to 86400.
            Default 3600.
        event_input: Constant JSON input for every invocation. Default: the scheduled event itself.
        dead_letter_kms_key_arn: CMK for the dead-letter queue (must allow EventBridge).
            Default: the queue creates one.
    """

    schedule_expression: str
    alarm_topic_arn: pulumi.Input[str]
    retry_attempts: int = 2
    maximum_event_age_seconds: int = 3600
    event_input: Mapping[str, Any] | None = None
    dead_letter_kms_key_arn: pulumi.Input[str] | None = None


def validate_function_args(kind: str, name: str, args: FunctionArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""
    where = f"{kind} {name}"
    if args.runtime not in PYTHON_RUNTIMES:
        raise ValueError(f"{where}: runtime={args.runtime!r}; allowed: {', '.join(PYTHON_RUNTIMES)}")
    if args.architecture not in ARCHITECTURES:
        raise ValueError(f"{where}: architecture={args.architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    if not 1 <= args.timeout_seconds <= 900:
        raise ValueError(f"{where}: timeout_seconds={args.timeout_seconds}; allowed: 1 to 900")
    if not 128 <= args.memory_mb <= 10240:
        raise ValueError(f"{where}: memory_mb={args.memory_mb}; allowed: 128 to 10240")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{where}: log_retention_days={args.log_retention_days}; allowed: "
            + ", ".join(map(str, LOG_RETENTION_DAYS))
        )
    if args.reserved_concurrency is not None and args.reserved_concurrency < 0:
        raise ValueError(
            f"{where}: reserved_concurrency={args.reserved_concurrency}; allowed: 0 or more, or None"
        )
    if "." not in args.handler:
        raise ValueError(f"{where}: handler={args.handler!r}; allowed: 'module.function'")
    if isinstance(args.code, str) and not Path(args.code).exists():
        raise ValueError(f"{where}: code={args.code!r} does not exist; allowed: a .zip file or a directory")
    if args.code_signing is not None:
        check_signable(where, args.code)
    for grant in args.grants:
        if not isinstance(grant, Grant):
            raise ValueError(
                f"{where}: grants has {grant!r}; allowed: components.iam.Grant objects "
                "(iam.dynamodb_read_write(...), iam.sns_publish(...), …)"
            )


def validate_queue_function_args(name: str, args: QueueFunctionArgs) -> None:
    """The checks of `validate_function_args` plus the event source mapping's."""
    validate_function_args("QueueFunction", name, args)
    where = f"QueueFunction {name}"
    if not 1 <= args.batch_size <= 10000:
        raise ValueError(f"{where}: batch_size={args.batch_size}; allowed: 1 to 10000")
    if not 0 <= args.batching_window_seconds <= 300:
        raise ValueError(
            f"{where}: batching_window_seconds={args.batching_window_seconds}; allowed: 0 to 300"
        )
    if args.batch_size > 10 and args.batching_window_seconds < 1:
        raise ValueError(
            f"{where}: batch_size={args.batch_size} with batching_window_seconds=0; allowed: a batching "
            "window of at least 1 second for batches above 10"
        )
    if args.maximum_concurrency is not None and not 2 <= args.maximum_concurrency <= 1000:
        raise ValueError(
            f"{where}: maximum_concurrency={args.maximum_concurrency}; allowed: 2 to 1000, or None"
        )
    if (
        args.reserved_concurrency is not None
        and args.maximum_concurrency is not None
        and args.reserved_concurrency < args.maximum_concurrency
    ):
        raise ValueError(
            f"{where}: reserved_concurrency={args.reserved_concurrency} is below maximum_concurrency="
            f"{args.maximum_concurrency}, so the mapping's pollers would be throttled and messages "
            "redelivered; allowed: reserved_concurrency >= maximum_concurrency "
            "(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html)"
        )
    visibility = args.queue.visibility_timeout_seconds
    needed = VISIBILITY_TO_TIMEOUT_RATIO * args.timeout_seconds
    if visibility < needed:
        raise ValueError(
            f"{where}: the queue's visibility timeout is {visibility} s, below "
            f"{VISIBILITY_TO_TIMEOUT_RATIO} x timeout_seconds ({args.timeout_seconds} s) = {needed} s; "
            f"allowed: a queue visibility timeout of at least {needed} s (raise the queue's "
            "visibility_timeout_seconds or lower timeout_seconds)"
        )


@dataclass
class _Declared:
    function: aws.lambda_.Function
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup


def _declare_function(
    component: Component,
    name: str,
    args: FunctionArgs,
    *,
    consumed: QueueRef | None = None,
    dead_letter: QueueRef | None = None,
) -> _Declared:
    """Log group, execution role with exactly the declared grants, and the function."""
    if args.log_kms_key_arn is None:
        log_key = _own_key(component, f"{name}-log-key", f"log group of function {name}", [], logs=True)
    else:
        log_key = pulumi.Output.from_input(args.log_kms_key_arn)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name_prefix=f"/aws/lambda/{name}-",
        retention_in_days=args.log_retention_days,
        kms_key_id=log_key,
        tags=component.named_tags(f"{name}-logs"),
        opts=component.child_opts(),
    )
    role = aws.iam.Role(
        f"{name}-role",
        description=f"Execution role of function {name}: only its declared grants",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        tags=component.named_tags(f"{name}-role"),
        opts=component.child_opts(),
    )
    environment_key = (
        pulumi.Output.from_input(args.environment_kms_key_arn)
        if args.environment_kms_key_arn is not None
        else log_key
    )
    grants = [*args.grants, logs_write(log_group.arn, label="OwnLogGroup")]
    if args.environment:
        # The execution role decrypts its own environment at start (KMSAccessDeniedException otherwise).
        grants.append(kms_decrypt([environment_key], label="Environment"))
    if args.tracing:
        grants.append(XRAY_WRITE)
    if consumed is not None:
        grants.append(sqs_consume(consumed.arn, label="Source"))
        if consumed.kms_key_arn is not None:
            grants.append(kms_decrypt([consumed.kms_key_arn], label="SourceQueue"))
    if dead_letter is not None:
        grants.append(sqs_send(dead_letter.arn, label="DeadLetter"))
        if dead_letter.kms_key_arn is not None:
            grants.append(kms_use([dead_letter.kms_key_arn], label="DeadLetter"))
    policy = aws.iam.RolePolicy(
        f"{name}-permissions",
        role=role.id,
        policy=policy_document(grants),
        opts=component.child_opts(),
    )
    package: dict[str, Any]
    if args.code_signing is not None:
        # Deploy what Signer signed: the signed copy of exactly this upload, under the enforcing config.
        signed = sign_archive(component, name, str(args.code), args.code_signing)
        package = {
            "s3_bucket": signed.bucket,
            "s3_key": signed.key,
            "code_signing_config_arn": args.code_signing.config_arn,
        }
    else:
        package = {
            "code": args.code if isinstance(args.code, pulumi.Archive) else pulumi.FileArchive(args.code)
        }
    function = aws.lambda_.Function(
        f"{name}-function",
        **package,
        handler=args.handler,
        runtime=args.runtime,
        architectures=[args.architecture],
        role=role.arn,
        timeout=args.timeout_seconds,
        memory_size=args.memory_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment))
        if args.environment
        else None,
        kms_key_arn=environment_key if args.environment else None,
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(
            mode="Active" if args.tracing else "PassThrough"
        ),
        layers=list(args.layers) or None,
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=log_group.name),
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=dead_letter.arn)
        if dead_letter is not None
        else None,
        reserved_concurrent_executions=args.reserved_concurrency,
        description=args.description or None,
        tags=component.named_tags(name),
        opts=component.child_opts(depends_on=[policy, log_group]),
    )
    return _Declared(function=function, role=role, policy=policy, log_group=log_group)


class Function(Component):
    """A Lambda function with no trigger of its own (invoked by other functions or services).

    Same log group and least-privilege role as the triggered kinds. Grant callers
    `iam.lambda_invoke(fn.function_arn)`. Outputs: `function_name`, `function_arn`, `role_arn`,
    `log_group_name`.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_function_args("Function", name, args)
        super().__init__("messaging", "Function", name, args.tags, opts)
        declared = _declare_function(self, name, args)
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
            }
        )


class QueueFunction(Component):
    """A Lambda function consuming one SQS queue with partial batch failures.

    Outputs: `function_name`, `function_arn`, `role_arn`, `log_group_name`.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: QueueFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_queue_function_args(name, args)
        super().__init__("messaging", "QueueFunction", name, args.tags, opts)
        queue = args.queue.ref if isinstance(args.queue, Queue) else args.queue
        declared = _declare_function(self, name, args, consumed=queue)
        aws.lambda_.EventSourceMapping(
            f"{name}-source",
            event_source_arn=queue.arn,
            function_name=declared.function.arn,
            batch_size=args.batch_size,
            maximum_batching_window_in_seconds=args.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=args.maximum_concurrency
            )
            if args.maximum_concurrency is not None
            else None,
            tags=self.named_tags(f"{name}-source"),
            opts=self.child_opts(depends_on=[declared.policy]),
        )
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
            }
        )


class ScheduledFunction(Component):
    """A Lambda function on an EventBridge schedule, with retries and a dead-letter queue.

    Events EventBridge cannot deliver (after `retry_attempts`) and invocations that still fail
    after Lambda's own two async retries both land in the DLQ, whose depth alarm notifies
    `alarm_topic_arn`. Outputs: `function_name`, `function_arn`, `role_arn`, `log_group_name`,
    `rule_arn`, `dead_letter` (a `QueueRef`).
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    rule_arn: pulumi.Output[str]
    dead_letter: QueueRef

    def __init__(
        self, name: str, args: ScheduledFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_function_args("ScheduledFunction", name, args)
        where = f"ScheduledFunction {name}"
        if not re.fullmatch(r"(rate|cron)\(.+\)", args.schedule_expression):
            raise ValueError(
                f"{where}: schedule_expression={args.schedule_expression!r}; "
                "allowed: 'rate(...)' or 'cron(...)'"
            )
        if not 0 <= args.retry_attempts <= 185:
            raise ValueError(f"{where}: retry_attempts={args.retry_attempts}; allowed: 0 to 185")
        if not 60 <= args.maximum_event_age_seconds <= 86400:
            raise ValueError(
                f"{where}: maximum_event_age_seconds={args.maximum_event_age_seconds}; allowed: 60 to 86400"
            )
        super().__init__("messaging", "ScheduledFunction", name, args.tags, opts)
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description=f"Runs function {name} on {args.schedule_expression}",
            schedule_expression=args.schedule_expression,
            state="ENABLED",
            tags=self.named_tags(f"{name}-schedule"),
            opts=self.child_opts(),
        )
        dead_letter = Queue(
            f"{name}-dlq",
            QueueArgs(
                alarm_topic_arn=args.alarm_topic_arn,
                dead_letter_queue=False,
                is_dead_letter_queue=True,
                message_retention_seconds=MAX_SQS_RETENTION_SECONDS,
                kms_key_arn=args.dead_letter_kms_key_arn,
                senders=[QueueSender("events", rule.arn, "Schedule")],
                tags=args.tags,
            ),
            opts=self.child_opts(),
        )
        declared = _declare_function(self, name, args, dead_letter=dead_letter.ref)
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=declared.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=self.child_opts(),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=declared.function.arn,
            input=json.dumps(args.event_input, sort_keys=True) if args.event_input is not None else None,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=args.retry_attempts,
                maximum_event_age_in_seconds=args.maximum_event_age_seconds,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter.arn),
            opts=self.child_opts(depends_on=[permission]),
        )
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.rule_arn = rule.arn
        self.dead_letter = dead_letter.ref
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
                "rule_arn": rule.arn,
                "dead_letter_url": dead_letter.url,
            }
        )


# --- email -----------------------------------------------------------------------------------


@dataclass
class EmailIdentityArgs:
    """Arguments of `EmailIdentity`.

    Attributes:
        email: The sender address. AWS emails it a verification link; until it is verified
            (and while the account is in the SES sandbox) sending fails.
        tags: Tags for the identity (the component adds `component`).
    """

    email: str
    tags: Mapping[str, str] = field(default_factory=dict)


class EmailIdentity(Component):
    """An SES email identity; `identity.send_grant()` lets a function send as it. Outputs: `arn`, `email`."""

    arn: pulumi.Output[str]
    email: str

    def __init__(
        self, name: str, args: EmailIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if not _EMAIL.match(args.email):
            raise ValueError(f"EmailIdentity {name}: email={args.email!r}; allowed: an email address")
        super().__init__("messaging", "EmailIdentity", name, args.tags, opts)
        identity = aws.sesv2.EmailIdentity(
            f"{name}-identity", email_identity=args.email, tags=self.named_tags(name), opts=self.child_opts()
        )
        self.arn = identity.arn
        self.email = args.email
        self.register_outputs({"arn": identity.arn, "email": args.email})

    def send_grant(self) -> Grant:
        """The grant to send email as this identity (and nothing else)."""
        return Grant("SESSendAs" + _SID.sub("", self.component_name.title()), SES_SEND_ACTIONS, (self.arn,))
