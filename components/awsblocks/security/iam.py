"""Least-privilege grants: a small vocabulary every component uses to say who may do what.

A `Grant` is one IAM statement: named actions (never a wildcard) on named resources (never
`*` unless the action has no resource-level permissions and the grant says so).
`policy_document(grants)` renders grants into one policy. Components take `Sequence[Grant]`
from their callers, so a caller declares exactly what a role may do and a test can compare the
rendered policy with that declaration.

Two layers of vocabulary:

- **Exact actions** (what least privilege needs): `dynamodb_access(table.arn, actions,
  indexes={"byCustomer": ("dynamodb:Query",)})`, `sns_access`, `sqs_access`, `lambda_access`,
  `ses_access`, `cognito_access`. Each checks every action against the real IAM actions that
  apply to that kind of resource (`RESOURCE_ACTIONS`) and refuses anything else, naming the
  argument, the value and what is allowed; API operations IAM authorizes under another name
  (TransactWriteItems, PublishBatch, SendMessageBatch, …) are refused with the action to list
  instead. An index gets only the actions declared for it (a Query on `byCustomer` grants no
  Scan there, and no Query on the table).
- **Presets** for callers that want the usual bundle: `dynamodb_read`, `dynamodb_read_write`,
  `sns_publish`, `sqs_send`, `sqs_consume`, `lambda_invoke`, `kms_use`, `logs_write`, ….

`granted_actions(policy_json)` reads a rendered policy back as action → resources (for tools
that compare what a role may do with what it did).

Example::

    grants = [
        *dynamodb_access(orders.arn, ("dynamodb:GetItem", "dynamodb:UpdateItem"),
                         indexes={"byCustomer": ("dynamodb:Query",)}, label="orders"),
        sns_access(events.arn, ("sns:Publish",), label="events"),
    ]
    aws.iam.RolePolicy("worker", role=role.id, policy=policy_document(grants))
"""

from __future__ import annotations

import json
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


# --- exact actions per kind of resource ------------------------------------------------------

DYNAMODB_TABLE = "DynamoDB table"
DYNAMODB_INDEX = "DynamoDB index"
SNS_TOPIC = "SNS topic"
SQS_QUEUE = "SQS queue"
LAMBDA_FUNCTION = "Lambda function"
SES_IDENTITY = "SES identity"
COGNITO_USER_POOL = "Cognito user pool"

RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    # Item and query actions (the Service Authorization Reference's "table" resource type).
    # Transactions are authorized per item: TransactWriteItems as PutItem / UpdateItem /
    # DeleteItem / ConditionCheckItem, TransactGetItems as GetItem.
    DYNAMODB_TABLE: (
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    ),
    # An index ARN (`<table arn>/index/<name>`) is the resource of reads through that index only.
    DYNAMODB_INDEX: ("dynamodb:Query", "dynamodb:Scan"),
    # PublishBatch is authorized as Publish.
    SNS_TOPIC: ("sns:Publish",),
    # The *Batch operations are authorized as their single-message actions.
    SQS_QUEUE: (
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ),
    LAMBDA_FUNCTION: ("lambda:InvokeFunction",),
    # SES v1 SendEmail / SendRawEmail; SES v2 SendEmail is authorized as ses:SendEmail.
    SES_IDENTITY: ("ses:SendEmail", "ses:SendRawEmail"),
    COGNITO_USER_POOL: ("cognito-idp:AdminGetUser", "cognito-idp:ListUsers"),
}
"""Kind of resource → the IAM actions the exact-action builders accept on it."""

AUTHORIZED_AS: dict[str, str] = {
    "dynamodb:TransactWriteItems": (
        "dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem or dynamodb:ConditionCheckItem "
        "(whichever the transaction's items do)"
    ),
    "dynamodb:TransactGetItems": "dynamodb:GetItem",
    "sns:PublishBatch": "sns:Publish",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
}
"""API operations that are no IAM action of their own → the action(s) IAM checks instead."""


def _a(noun: str) -> str:
    """The noun with its article, as read aloud: "an SNS topic", "an sqs", "a DynamoDB table"."""
    spoken_vowel = noun[:1].lower() in "aeiou" or noun.lower().startswith(("sns", "sqs", "ses"))
    return f"an {noun}" if spoken_vowel else f"a {noun}"


_INDEX_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def service_of(kind: str) -> str:
    """The IAM service prefix of a kind of resource ("dynamodb" for `DYNAMODB_TABLE`)."""
    return RESOURCE_ACTIONS[kind][0].split(":", 1)[0]


def action_problems(kind: str, actions: Sequence[str]) -> list[str]:
    """Why each of `actions` cannot be granted on a `kind` resource (empty when all can).

    Each message names the action and what is allowed, e.g. "'dynamodb:Scan' is not an action on
    a DynamoDB index; allowed: dynamodb:Query, dynamodb:Scan". Pure: callers add where it was declared.
    """
    if kind not in RESOURCE_ACTIONS:
        raise ValueError(f"kind={kind!r}; allowed: {', '.join(RESOURCE_ACTIONS)}")
    allowed = RESOURCE_ACTIONS[kind]
    service = service_of(kind)
    problems: list[str] = []
    if isinstance(actions, str):
        return [
            f"{actions!r} is one string, not a tuple of action names (a one-element tuple needs a "
            f"trailing comma: ({actions!r},)); allowed on {_a(kind)}: {', '.join(allowed)}"
        ]
    if not actions:
        problems.append(f"no actions on {_a(kind)}; allowed: one or more of {', '.join(allowed)}")
    for action in actions:
        if not isinstance(action, str):
            problems.append(f"{action!r} is not an action name; allowed on {_a(kind)}: {', '.join(allowed)}")
            continue
        if action in allowed:
            continue
        prefix = action.split(":", 1)[0] if ":" in action else ""
        if prefix != service:
            problems.append(
                f"{action!r} is not {_a(service)} action, and {_a(kind)} takes only {service} actions; "
                f"allowed: {', '.join(allowed)}"
            )
        elif action in AUTHORIZED_AS:
            problems.append(
                f"{action!r} is not an IAM action: IAM authorizes it as {AUTHORIZED_AS[action]}; "
                f"allowed on {_a(kind)}: {', '.join(allowed)}"
            )
        else:
            problems.append(f"{action!r} is not an action on {_a(kind)}; allowed: {', '.join(allowed)}")
    return problems


def _exact(kind: str, builder: str, argument: str, actions: Sequence[str], label: str) -> tuple[str, ...]:
    problems = action_problems(kind, actions)
    if problems:
        raise ValueError(f"{builder}(label={label!r}): {argument}: " + "; ".join(problems))
    return tuple(dict.fromkeys(actions))


def index_arn(table_arn: pulumi.Input[str], index_name: str) -> pulumi.Output[str]:
    """The ARN of one index of a table: `<table arn>/index/<name>` (what IAM authorizes index reads on)."""
    return pulumi.Output.from_input(table_arn).apply(lambda arn: f"{arn}/index/{index_name}")


def dynamodb_access(
    table_arn: pulumi.Input[str],
    actions: Sequence[str] = (),
    *,
    indexes: Mapping[str, Sequence[str]] | None = None,
    label: str = "table",
) -> list[Grant]:
    """Exactly `actions` on one table and, per index name, exactly its actions on that index.

    One statement for the table (none when `actions` is empty: reading only through indexes needs
    no table action) and one per index, on `<table arn>/index/<name>`. Raises ValueError naming the
    argument, the value and what is allowed, for an action that is not a table action (or not
    Query/Scan on an index), an invalid index name, or nothing granted at all.
    """
    indexes = dict(indexes or {})
    if not actions and not indexes:
        raise ValueError(
            f"dynamodb_access(label={label!r}): actions and indexes are both empty; allowed: one or more "
            f"of {', '.join(RESOURCE_ACTIONS[DYNAMODB_TABLE])} on the table and/or "
            f"{', '.join(RESOURCE_ACTIONS[DYNAMODB_INDEX])} per index"
        )
    grants: list[Grant] = []
    if actions:
        exact = _exact(DYNAMODB_TABLE, "dynamodb_access", "actions", actions, label)
        grants.append(Grant(_sid("DynamoDB", label), exact, (table_arn,)))
    for name, index_actions in indexes.items():
        if not isinstance(name, str) or not _INDEX_NAME.match(name):
            raise ValueError(
                f"dynamodb_access(label={label!r}): indexes has index name {name!r}; allowed: 3 to 255 "
                "letters, digits, '_', '.' or '-' (the index's name as the table declares it)"
            )
        exact = _exact(DYNAMODB_INDEX, "dynamodb_access", f"indexes[{name!r}]", index_actions, label)
        grants.append(Grant(_sid("DynamoDB", f"{label} index {name}"), exact, (index_arn(table_arn, name),)))
    return grants


def sns_access(topic_arn: pulumi.Input[str], actions: Sequence[str], *, label: str = "topic") -> Grant:
    """Exactly `actions` (sns:Publish; PublishBatch needs it too) on one topic."""
    return Grant(_sid("SNS", label), _exact(SNS_TOPIC, "sns_access", "actions", actions, label), (topic_arn,))


def sqs_access(queue_arn: pulumi.Input[str], actions: Sequence[str], *, label: str = "queue") -> Grant:
    """Exactly `actions` (sqs:SendMessage, sqs:GetQueueAttributes, …) on one queue."""
    return Grant(_sid("SQS", label), _exact(SQS_QUEUE, "sqs_access", "actions", actions, label), (queue_arn,))


def lambda_access(
    function_arn: pulumi.Input[str], actions: Sequence[str], *, label: str = "function"
) -> Grant:
    """Exactly `actions` (lambda:InvokeFunction) on one function."""
    exact = _exact(LAMBDA_FUNCTION, "lambda_access", "actions", actions, label)
    return Grant(_sid("Lambda", label), exact, (function_arn,))


def ses_access(identity_arn: pulumi.Input[str], actions: Sequence[str], *, label: str = "identity") -> Grant:
    """Exactly `actions` (ses:SendEmail and/or ses:SendRawEmail) as one SES identity."""
    exact = _exact(SES_IDENTITY, "ses_access", "actions", actions, label)
    return Grant(_sid("SES", label), exact, (identity_arn,))


def cognito_access(
    user_pool_arn: pulumi.Input[str], actions: Sequence[str], *, label: str = "user pool"
) -> Grant:
    """Exactly `actions` (cognito-idp:ListUsers, cognito-idp:AdminGetUser) on one user pool."""
    exact = _exact(COGNITO_USER_POOL, "cognito_access", "actions", actions, label)
    return Grant(_sid("Cognito", label), exact, (user_pool_arn,))


# --- reading a policy back -------------------------------------------------------------------


def _strings(value: Any, *, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"granted_actions: {where} is {value!r}; allowed: a string or a list of strings")
    return items


def granted_actions(policy_json: str) -> dict[str, list[str]]:
    """Action → the resources its Allow statements name, from one identity policy's JSON.

    Pure (no AWS, no Pulumi): for tools that compare what a role may do with what it did, e.g.
    the local runtime's IAM report on the synthesized role policies. Actions and resources come
    out sorted and de-duplicated; Deny statements and conditions are not applied (it lists what
    the Allow statements name). Raises ValueError on what it cannot list faithfully: text that
    is not a policy document, or an Allow with NotAction / NotResource.
    """
    try:
        document = json.loads(policy_json)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"granted_actions: policy_json is not JSON ({exc}); allowed: a policy document"
        ) from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise ValueError("granted_actions: policy_json has no 'Statement'; allowed: an IAM policy document")
    statements = document["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise ValueError(
            f"granted_actions: Statement is {statements!r}; allowed: an object or a list of them"
        )
    granted: dict[str, set[str]] = {}
    for number, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise ValueError(f"granted_actions: statement #{number} is {statement!r}; allowed: an object")
        if statement.get("Effect") != "Allow":
            continue
        where = f"statement {statement.get('Sid') or f'#{number}'}"
        for unsupported in ("NotAction", "NotResource"):
            if unsupported in statement:
                raise ValueError(
                    f"granted_actions: {where} allows {unsupported}, which names what is NOT granted; "
                    "allowed: Action and Resource lists"
                )
        actions = _strings(statement.get("Action"), where=f"{where} Action")
        resources = _strings(statement.get("Resource"), where=f"{where} Resource")
        for action in actions:
            granted.setdefault(action, set()).update(resources)
    return {action: sorted(granted[action]) for action in sorted(granted)}
