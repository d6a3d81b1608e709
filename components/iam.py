"""Least-privilege grants: a small vocabulary every component uses to say who may do what.

A `Grant` is one IAM statement: named actions (never a wildcard) on named resources (never
`*` unless the action has no resource-level permissions and the grant says so). The helper
functions below are the vocabulary (`dynamodb_read_write(table.arn, table.index_arns)`,
`sns_publish(topic.arn)`, …) and `policy_document(grants)` renders them into one policy.
Components take `Sequence[Grant]` from their callers, so a caller declares exactly what a
role may do and a test can compare the rendered policy with that declaration.

Example::

    grants = [dynamodb_read_write(orders.arn, orders.index_arns), sns_publish(events.arn)]
    aws.iam.RolePolicy("worker", role=role.id, policy=policy_document(grants))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")
_SID = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Grant:
    """One IAM statement (Effect Allow): `actions` on `resources`.

    Attributes:
        sid: Statement id, letters and digits only; says what the grant is for.
        actions: Fully named actions such as "dynamodb:GetItem"; wildcards are refused.
        resources: ARNs (strings or outputs) the actions apply to. A literal "*" is refused
            unless `any_resource` is True.
        any_resource: The actions support no resource-level permissions (e.g.
            "ecr:GetAuthorizationToken"), so the resource must be "*". Default False.
        conditions: IAM condition block, e.g. {"StringEquals": {"cloudwatch:namespace": "App"}}.
            Default none.
    """

    sid: str
    actions: tuple[str, ...]
    resources: tuple[pulumi.Input[str], ...]
    any_resource: bool = False
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SID.match(self.sid):
            raise ValueError(f"Grant sid={self.sid!r}; allowed: letters and digits only")
        if not self.actions:
            raise ValueError(f"Grant {self.sid}: no actions; allowed: one or more 'service:Action' names")
        for action in self.actions:
            if not _ACTION.match(action):
                raise ValueError(
                    f"Grant {self.sid}: action {action!r}; allowed: a fully named action such as "
                    "'dynamodb:GetItem' (wildcards are refused)"
                )
        if not self.resources:
            raise ValueError(f"Grant {self.sid}: no resources; allowed: one or more ARNs")
        if "*" in self.resources and not self.any_resource:
            raise ValueError(
                f"Grant {self.sid}: resource '*'; allowed: ARNs, or '*' with any_resource=True for "
                "actions that have no resource-level permissions"
            )
        if self.any_resource and tuple(self.resources) != ("*",):
            raise ValueError(f"Grant {self.sid}: any_resource=True needs resources=('*',)")

    def statement(self) -> dict[str, Any]:
        """The IAM statement; `Resource` is an output (render with `policy_document`)."""
        rendered: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(set(self.actions)),
            # Resolved and de-duplicated in order: callers may pass the same key or ARN twice.
            "Resource": pulumi.Output.all(*self.resources).apply(lambda arns: list(dict.fromkeys(arns))),
        }
        if self.conditions:
            rendered["Condition"] = {test: dict(body) for test, body in self.conditions.items()}
        return rendered


def policy_document(grants: Sequence[Grant]) -> pulumi.Output[str]:
    """The policy JSON for `grants`; raises ValueError on an empty list or a repeated sid."""
    if not grants:
        raise ValueError("policy_document: no grants; a policy needs at least one statement")
    sids = [g.sid for g in grants]
    repeated = sorted({s for s in sids if sids.count(s) > 1})
    if repeated:
        raise ValueError(f"policy_document: sids repeat: {repeated}; allowed: one grant per sid")
    return pulumi.Output.json_dumps(
        {"Version": "2012-10-17", "Statement": [grant.statement() for grant in grants]}
    )


def _sid(prefix: str, label: str) -> str:
    cleaned = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", label) if part)
    return f"{prefix}{cleaned}"


DYNAMODB_READ_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
DYNAMODB_WRITE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
KMS_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def dynamodb_read(
    table_arn: pulumi.Input[str], index_arns: Sequence[pulumi.Input[str]] = (), *, label: str = "table"
) -> Grant:
    """Read items of one table (and query its indexes)."""
    return Grant(_sid("DynamoDBRead", label), DYNAMODB_READ_ACTIONS, (table_arn, *index_arns))


def dynamodb_read_write(
    table_arn: pulumi.Input[str], index_arns: Sequence[pulumi.Input[str]] = (), *, label: str = "table"
) -> Grant:
    """Read and write items of one table (transactions need no extra action) and query its indexes."""
    return Grant(
        _sid("DynamoDBReadWrite", label),
        DYNAMODB_READ_ACTIONS + DYNAMODB_WRITE_ACTIONS,
        (table_arn, *index_arns),
    )


def dynamodb_stream_read(stream_arn: pulumi.Input[str], *, label: str = "table") -> Grant:
    """Consume one table's stream (what a Lambda event source mapping needs)."""
    return Grant(
        _sid("DynamoDBStream", label),
        (
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        ),
        (stream_arn,),
    )


def sns_publish(topic_arn: pulumi.Input[str], *, label: str = "topic") -> Grant:
    """Publish to one topic."""
    return Grant(_sid("SNSPublish", label), ("sns:Publish",), (topic_arn,))


def sqs_send(queue_arn: pulumi.Input[str], *, label: str = "queue") -> Grant:
    """Send messages to one queue."""
    return Grant(_sid("SQSSend", label), ("sqs:GetQueueAttributes", "sqs:SendMessage"), (queue_arn,))


def sqs_consume(queue_arn: pulumi.Input[str], *, label: str = "queue") -> Grant:
    """Receive, delete and extend messages of one queue (what a Lambda event source mapping needs)."""
    return Grant(
        _sid("SQSConsume", label),
        (
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
        ),
        (queue_arn,),
    )


def kms_use(key_arns: Sequence[pulumi.Input[str]], *, label: str = "keys") -> Grant:
    """Encrypt and decrypt data keys with these CMKs (encrypted tables, topics and queues need it)."""
    return Grant(_sid("KMSUse", label), KMS_USE_ACTIONS, tuple(key_arns))


def kms_decrypt(key_arns: Sequence[pulumi.Input[str]], *, label: str = "keys") -> Grant:
    """Decrypt with these CMKs only (reading SecureString parameters, encrypted secrets)."""
    return Grant(_sid("KMSDecrypt", label), ("kms:Decrypt",), tuple(key_arns))


def lambda_invoke(function_arn: pulumi.Input[str], *, label: str = "function") -> Grant:
    """Invoke one function."""
    return Grant(_sid("LambdaInvoke", label), ("lambda:InvokeFunction",), (function_arn,))


def ssm_read_parameters(parameter_arns: Sequence[pulumi.Input[str]], *, label: str = "parameters") -> Grant:
    """Read these SSM parameters."""
    return Grant(_sid("SSMRead", label), ("ssm:GetParameters",), tuple(parameter_arns))


def secrets_read(secret_arns: Sequence[pulumi.Input[str]], *, label: str = "secrets") -> Grant:
    """Read these Secrets Manager secrets."""
    return Grant(_sid("SecretsRead", label), ("secretsmanager:GetSecretValue",), tuple(secret_arns))


def logs_write(log_group_arn: pulumi.Input[str], *, label: str = "logs") -> Grant:
    """Create streams in and write events to one log group."""
    streams = pulumi.Output.from_input(log_group_arn).apply(lambda arn: f"{arn}:*")
    return Grant(
        _sid("LogsWrite", label), ("logs:CreateLogStream", "logs:PutLogEvents"), (log_group_arn, streams)
    )


def ecr_pull(repository_arns: Sequence[pulumi.Input[str]], *, label: str = "repository") -> list[Grant]:
    """Pull images from these repositories (the token call has no resource-level permissions)."""
    return [
        Grant(_sid("ECRAuth", label), ("ecr:GetAuthorizationToken",), ("*",), any_resource=True),
        Grant(
            _sid("ECRPull", label),
            ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
            tuple(repository_arns),
        ),
    ]


def cloudwatch_put_metrics(namespace: str, *, label: str = "metrics") -> Grant:
    """Publish custom metrics, only into one namespace (PutMetricData has no resource ARNs)."""
    return Grant(
        _sid("CloudWatchMetrics", label),
        ("cloudwatch:PutMetricData",),
        ("*",),
        any_resource=True,
        conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
    )
