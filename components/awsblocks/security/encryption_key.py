"""`EncryptionKey`: a customer-managed KMS key with rotation and a least-privilege key policy.

Each AWS service the key admits gets the condition AWS documents for the path it uses the key
on (`SERVICE_KEY_USES`), not one condition for all: a condition key that the service's request
does not carry denies every request, and the service fails silently (an alarm that never
arrives, InvocationsFailedToBeSentToDLQ).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.core import AccountFacts, Component, ComponentArgs, account_facts

Condition = dict[str, dict[str, Any]]

SERVICE_DATA_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
"""What a service needs to write to (and read from) a resource encrypted with the key."""


def _source_account(facts: AccountFacts) -> Condition:
    return {"StringEquals": {"aws:SourceAccount": facts.account_id}}


def _via_sqs_for_this_accounts_queues(facts: AccountFacts) -> Condition:
    # SQS binds every data key to the queue's ARN (encryption context aws:sqs:arn).
    return {
        "StringEquals": {"kms:ViaService": f"sqs.{facts.region}.{facts.dns_suffix}"},
        "ArnLike": {"kms:EncryptionContext:aws:sqs:arn": facts.arn("sqs", "*")},
    }


def _via_sns_for_this_accounts_topics(facts: AccountFacts) -> Condition:
    # SNS binds every data key to the topic's ARN (encryption context aws:sns:topicArn).
    return {
        "StringEquals": {"kms:ViaService": f"sns.{facts.region}.{facts.dns_suffix}"},
        "ArnLike": {"kms:EncryptionContext:aws:sns:topicArn": facts.arn("sns", "*")},
    }


def _via_sns(facts: AccountFacts) -> Condition:
    return {"StringEquals": {"kms:ViaService": f"sns.{facts.region}.{facts.dns_suffix}"}}


@dataclass(frozen=True)
class ServiceKeyUse:
    """One path on which an AWS service uses the key, with the condition AWS documents for it.

    Attributes:
        sid: Statement id in the key policy.
        path: What the service does with the key (for readers of the policy and this table).
        documentation: The AWS page that documents the statement for this path.
        condition: The statement's condition, from the account facts.
    """

    sid: str
    path: str
    documentation: str
    condition: Callable[[AccountFacts], Condition]


SQS_EVENT_SOURCES_DOC = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "sqs-key-management.html#compatibility-with-aws-services"
)
SNS_EVENT_SOURCES_DOC = (
    "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services"
)
EVENTBRIDGE_DLQ_DOC = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html"
CODESTAR_NOTIFICATIONS_DOC = "https://docs.aws.amazon.com/dtconsole/latest/userguide/set-up-sns.html"

SERVICE_KEY_USES: dict[str, tuple[ServiceKeyUse, ...]] = {
    # SNS delivering to a subscribed encrypted queue; SNS passes the topic's account as
    # aws:SourceAccount, the confused-deputy guard for an event source (SQS_EVENT_SOURCES_DOC).
    "sns": (
        ServiceKeyUse(
            "ServicesUseForThisAccount",
            "SNS delivers to encrypted queues",
            SQS_EVENT_SOURCES_DOC,
            _source_account,
        ),
    ),
    # CloudWatch alarm actions publishing to an encrypted topic; CloudWatch passes the alarm's
    # account as aws:SourceAccount (SNS_EVENT_SOURCES_DOC).
    "cloudwatch": (
        ServiceKeyUse(
            "ServicesUseForThisAccount",
            "alarms publish to encrypted topics",
            SNS_EVENT_SOURCES_DOC,
            _source_account,
        ),
    ),
    # Kept for callers that name it; no documented path needs SQS itself as a key principal
    # (SQS uses the key on behalf of the sender or receiver, who need their own grants).
    "sqs": (
        ServiceKeyUse(
            "ServicesUseForThisAccount", "(no documented path)", SQS_EVENT_SOURCES_DOC, _source_account
        ),
    ),
    # EventBridge: AWS documents that aws:SourceAccount/SourceArn/SourceOrgID are not supported
    # when EventBridge uses a key to publish to an encrypted topic (SNS_EVENT_SOURCES_DOC), and
    # documents its DLQ writes with aws:SourceArn on the queue policy only (EVENTBRIDGE_DLQ_DOC).
    # So the key admits EventBridge through SQS or SNS, for this account's queues and topics
    # (conditions KMS evaluates on every such request), and the queue or topic policy names
    # the rule.
    "events": (
        ServiceKeyUse(
            "EventBridgeWritesThisAccountsQueues",
            "failed rule targets to encrypted dead-letter queues (and queue targets)",
            EVENTBRIDGE_DLQ_DOC,
            _via_sqs_for_this_accounts_queues,
        ),
        ServiceKeyUse(
            "EventBridgePublishesToThisAccountsTopics",
            "rule targets that are encrypted topics",
            SNS_EVENT_SOURCES_DOC,
            _via_sns_for_this_accounts_topics,
        ),
    ),
    # CodeStar Notifications publishing to an encrypted topic: AWS documents the key statement
    # with kms:ViaService sns.<region>.amazonaws.com (CODESTAR_NOTIFICATIONS_DOC).
    "codestar-notifications": (
        ServiceKeyUse(
            "CodeStarNotificationsPublishesThroughSns",
            "notification rules publish to encrypted topics",
            CODESTAR_NOTIFICATIONS_DOC,
            _via_sns,
        ),
    ),
}
"""Every service an `EncryptionKey` can admit, with the documented statement for each path."""


def service_statements(facts: AccountFacts, services: Sequence[str]) -> list[dict[str, object]]:
    """Key-policy statements admitting `services`, one per documented (path, condition).

    Services whose documented condition is the same share one statement. Raises ValueError
    naming a service the table does not know (add it with the condition AWS documents).
    """
    unknown = sorted(set(services) - set(SERVICE_KEY_USES))
    if unknown:
        raise ValueError(
            f"service principals {unknown} have no documented key-policy statement here; allowed: "
            f"{', '.join(sorted(SERVICE_KEY_USES))} (add the service to "
            "awsblocks.security.encryption_key.SERVICE_KEY_USES with the condition AWS documents for it)"
        )
    grouped: dict[str, tuple[ServiceKeyUse, set[str]]] = {}
    for service in sorted(set(services)):
        for use in SERVICE_KEY_USES[service]:
            grouped.setdefault(use.sid, (use, set()))[1].add(facts.service_principal(service))
    return [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": sorted(principals)},
            "Action": list(SERVICE_DATA_KEY_ACTIONS),
            "Resource": "*",
            "Condition": use.condition(facts),
        }
        for sid, (use, principals) in grouped.items()
    ]


@dataclass
class EncryptionKeyArgs(ComponentArgs):
    """Arguments of `EncryptionKey`.

    Attributes:
        description: What the key protects (shown in the KMS console).
        service_principals: Services (short names, the keys of `SERVICE_KEY_USES`: "sns",
            "cloudwatch", "events", "codestar-notifications", "sqs") allowed to generate data
            keys and decrypt, each under the condition AWS documents for its path (this
            account's resources only). SNS→SQS delivery to an encrypted queue needs "sns";
            EventBridge dead-letter queues and targets need "events". Default none.
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
        unknown = sorted(set(args.service_principals) - set(SERVICE_KEY_USES))
        if unknown:
            raise ValueError(
                f"EncryptionKey {name}: service_principals has {unknown}; allowed: "
                f"{', '.join(sorted(SERVICE_KEY_USES))} (a new service needs its entry in "
                "awsblocks.security.encryption_key.SERVICE_KEY_USES, with the condition AWS documents for it)"
            )
        super().__init__("EncryptionKey", name, args.tags, opts, name_prefix=args.name_prefix)
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
        statements += service_statements(facts, args.service_principals)
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
        alias_name = f"alias/{self.name_prefix}{name}"
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
            name_prefix=owner.name_prefix,
        ),
        opts=owner.child_opts(),
    )
    return key.key_arn


def own_key(
    component: Component, name: str, description: str, services: Sequence[str], *, logs: bool = False
) -> pulumi.Output[str]:
    """A CMK of the component's own (`key_arn_or_own` without a given key)."""
    return key_arn_or_own(component, None, name, description, services=services, logs=logs)
