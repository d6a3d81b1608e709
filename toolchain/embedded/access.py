"""IAM as AWS enforces it, for the emulator: what a request needs, and whether its caller may.

moto can enforce identity policies (`INITIAL_NO_AUTH_ACTION_COUNT`), but it checks most services
against the resource "*" — so a least-privilege policy that names a table ARN denies every call
— and it checks `dynamodb:TransactWriteItems` as if it were an IAM action. This module is the
faithful version, used by the emulator's WSGI middleware:

- `required_permissions(request)`: the (IAM action, resource ARN) pairs AWS authorizes for one
  request: the table or index ARN for DynamoDB (Query/Scan on an `IndexName` → the index ARN),
  each item of TransactWriteItems as its PutItem/UpdateItem/DeleteItem/ConditionCheckItem and of
  TransactGetItems as GetItem, each table of a Batch*; the queue ARN from `QueueUrl` (batch
  actions checked as the single action); the topic ARN (PublishBatch → sns:Publish); the SES
  identity of the sender; the Cognito user pool ARN; the function ARN; plus the KMS actions a
  caller needs on the key of an encrypted queue or topic (SendMessage/Publish →
  kms:GenerateDataKey + kms:Decrypt, ReceiveMessage → kms:Decrypt).
- `evaluate(documents, permission)`: moto's own policy classes (`IAMPolicyStatement`) decide per
  statement, combined as IAM does (an explicit Deny wins, else any Allow, else implicit deny).
- `MotoIdentities`: the caller of a signed request (IAM user or assumed role), authenticated with
  moto's `IAMRequest` signature check, with the identity policies moto holds for it now.
- `AccessLog`: per role, what it used and what it was denied (the IAM report reads it).

Resource-based policies are not evaluated (in this program they grant only service principals).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol

from toolchain.embedded.awswire import WireRequest

DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Permission:
    """One IAM authorization AWS performs for a request."""

    action: str
    """`service:Action` as IAM names it (`dynamodb:PutItem`)."""
    resource: str
    """The resource ARN (or "*" for actions without resource-level permissions)."""
    kms: bool = False
    """Implied by the service using a KMS key on the caller's behalf (SSE queues and topics)."""
    context: Mapping[str, str] = field(default_factory=dict)
    """Condition keys this request carries (e.g. cloudwatch:namespace)."""


class Resolver(Protocol):
    """What the permission rules need to know about the emulator's resources."""

    def queue_key(self, queue_arn: str) -> str | None:
        """The KMS key ARN that encrypts a queue, or None."""

    def topic_key(self, topic_arn: str) -> str | None:
        """The KMS key ARN that encrypts a topic, or None."""

    def ses_identity(self, address: str, region: str) -> str:
        """The verified SES identity a sender address sends as (the address or its domain)."""


class NoResources:
    """A resolver that knows nothing: no encryption, every sender is its own identity."""

    def queue_key(self, queue_arn: str) -> str | None:
        return None

    def topic_key(self, topic_arn: str) -> str | None:
        return None

    def ses_identity(self, address: str, region: str) -> str:
        return address


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _table_arn(name: str, region: str, account: str) -> str:
    return name if name.startswith("arn:") else _arn("dynamodb", region, account, f"table/{name}")


_QUEUE_URL = re.compile(r"^https?://[^/]+/(?P<account>\d{12})/(?P<name>[^/?]+)")


def queue_arn_from_url(url: str, region: str, account: str) -> str:
    """`http://host/123456789012/name` → `arn:aws:sqs:<region>:123456789012:name`."""
    match = _QUEUE_URL.match(url)
    if match:
        return _arn("sqs", region, match["account"], match["name"])
    return _arn("sqs", region, account, url.rsplit("/", 1)[-1])


_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_DYNAMODB_ACCOUNT_WIDE = {
    "ListTables",
    "DescribeLimits",
    "DescribeEndpoints",
    "ListBackups",
    "ListGlobalTables",
}
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_SES_SEND = {"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail", "SendBounce"}


def _dynamodb(request: WireRequest, region: str, account: str) -> list[Permission]:
    op, params = request.operation, request.params
    if op in _DYNAMODB_ACCOUNT_WIDE:
        return [Permission(f"dynamodb:{op}", "*")]
    if op == "TransactWriteItems":
        found = []
        for item in params.get("TransactItems") or []:
            for kind, action in _TRANSACT_WRITE.items():
                if kind in item:
                    found.append(
                        Permission(
                            f"dynamodb:{action}", _table_arn(str(item[kind]["TableName"]), region, account)
                        )
                    )
        return found
    if op == "TransactGetItems":
        return [
            Permission("dynamodb:GetItem", _table_arn(str(item["Get"]["TableName"]), region, account))
            for item in params.get("TransactItems") or []
            if "Get" in item
        ]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [
            Permission(f"dynamodb:{op}", _table_arn(str(table), region, account))
            for table in (params.get("RequestItems") or {})
        ]
    table = params.get("TableName") or params.get("ResourceArn") or params.get("TableArn")
    if not table:
        return [Permission(f"dynamodb:{op}", "*")]
    arn = _table_arn(str(table), region, account)
    if op in ("Query", "Scan") and params.get("IndexName"):
        arn = f"{arn}/index/{params['IndexName']}"
    return [Permission(f"dynamodb:{op}", arn)]


def _sqs(request: WireRequest, region: str, account: str, resolver: Resolver) -> list[Permission]:
    op, params = request.operation, request.params
    action = f"sqs:{_SQS_BATCH.get(op, op)}"
    if params.get("QueueUrl"):
        arn = queue_arn_from_url(str(params["QueueUrl"]), region, account)
    elif params.get("QueueName"):
        arn = _arn("sqs", region, account, str(params["QueueName"]))
    else:
        return [Permission(action, "*")]
    found = [Permission(action, arn)]
    key = resolver.queue_key(arn) if op in ("SendMessage", "SendMessageBatch", "ReceiveMessage") else None
    if key:
        if op != "ReceiveMessage":
            found.append(Permission("kms:GenerateDataKey", key, kms=True))
        found.append(Permission("kms:Decrypt", key, kms=True))
    return found


def _sns(request: WireRequest, region: str, account: str, resolver: Resolver) -> list[Permission]:
    op, params = request.operation, request.params
    action = "sns:Publish" if op == "PublishBatch" else f"sns:{op}"
    topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
    if not topic and params.get("SubscriptionArn"):
        topic = str(params["SubscriptionArn"]).rsplit(":", 1)[0]
    if not topic and op == "CreateTopic" and params.get("Name"):
        topic = _arn("sns", region, account, str(params["Name"]))
    if not topic:
        return [Permission(action, "*")]
    found = [Permission(action, str(topic))]
    key = resolver.topic_key(str(topic)) if op in ("Publish", "PublishBatch") else None
    if key:
        found += [Permission("kms:GenerateDataKey", key, kms=True), Permission("kms:Decrypt", key, kms=True)]
    return found


def _ses(request: WireRequest, region: str, account: str, resolver: Resolver) -> list[Permission]:
    op, params = request.operation, request.params
    if op not in _SES_SEND:
        return [Permission(f"ses:{op}", "*")]
    source_arn = params.get("SourceArn") or params.get("FromArn")
    if source_arn:
        return [Permission(f"ses:{op}", str(source_arn))]
    _, address = parseaddr(str(params.get("Source") or params.get("FromEmailAddress") or ""))
    identity = resolver.ses_identity(address, region) if address else "*"
    return [Permission(f"ses:{op}", _arn("ses", region, account, f"identity/{identity}"))]


def required_permissions(
    request: WireRequest, account: str = DEFAULT_ACCOUNT, resolver: Resolver | None = None
) -> list[Permission]:
    """The IAM authorizations AWS performs for `request` (none for an operation every caller may
    call, or one it cannot tell)."""
    if not request.operation or not request.service:
        return []
    resolver = resolver or NoResources()
    region, op, params = request.region, request.operation, request.params
    service = request.service
    if service == "dynamodb":
        return _dynamodb(request, region, account)
    if service == "sqs":
        return _sqs(request, region, account, resolver)
    if service == "sns":
        return _sns(request, region, account, resolver)
    if service in ("ses", "sesv2"):
        return _ses(request, region, account, resolver)
    if service == "cognito-idp" and params.get("UserPoolId"):
        return [
            Permission(
                f"cognito-idp:{op}", _arn("cognito-idp", region, account, f"userpool/{params['UserPoolId']}")
            )
        ]
    if service == "lambda" and params.get("FunctionName"):
        name = str(params["FunctionName"])
        arn = name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}")
        action = "lambda:InvokeFunction" if op in ("Invoke", "InvokeAsync") else f"lambda:{op}"
        return [Permission(action, arn)]
    if service == "sts" and op == "GetCallerIdentity":
        return []  # AWS answers it for any valid credentials, whatever the policies say
    if service == "sts" and op == "AssumeRole" and params.get("RoleArn"):
        return [Permission("sts:AssumeRole", str(params["RoleArn"]))]
    if service == "cloudwatch" and op == "PutMetricData":
        namespace = str(params.get("Namespace") or "")
        return [Permission("cloudwatch:PutMetricData", "*", context={"cloudwatch:namespace": namespace})]
    return [Permission(f"{request.iam_prefix}:{op}", "*")]


# --- evaluation ---------------------------------------------------------------------------------


class Decision(Enum):
    """IAM's three outcomes for one authorization."""

    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


def _lowered(values: Any) -> Any:
    if isinstance(values, str):
        return values.lower()
    if isinstance(values, list):
        return [str(v).lower() for v in values]
    return values


@lru_cache(maxsize=512)
def _statements(document: str) -> tuple[tuple[str, Any], ...]:
    """(effect, moto IAMPolicyStatement) per statement, actions lower-cased (IAM ignores case)."""
    from moto.iam.access_control import IAMPolicyStatement

    parsed = json.loads(document)
    statements = parsed.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    prepared = []
    for statement in statements:
        statement = dict(statement)
        for key in ("Action", "NotAction"):
            if key in statement:
                statement[key] = _lowered(statement[key])
        prepared.append((str(statement.get("Effect", "Allow")), IAMPolicyStatement(statement)))
    return tuple(prepared)


def policy_text(policy: Any) -> str:
    """A policy document as JSON text, from a string, a dict or a moto managed `Policy`."""
    if isinstance(policy, str):
        return policy
    if isinstance(policy, dict):
        document = policy.get("policy_document", policy)
        return document if isinstance(document, str) else json.dumps(document)
    versions = getattr(policy, "versions", None)
    if versions:
        default = next(v for v in versions if v.is_default)
        document = default.document
        return document if isinstance(document, str) else json.dumps(document)
    raise TypeError(f"not a policy document: {policy!r}")


def evaluate(documents: Sequence[str], permission: Permission) -> Decision:
    """IAM's decision for `permission` under these identity policies (moto decides per statement)."""
    from moto.iam.access_control import PermissionResult

    action = permission.action.lower()
    context = dict(permission.context) or None
    allowed = False
    for document in documents:
        for effect, statement in _statements(document):
            result = statement.is_action_permitted(action, permission.resource, None, context)
            if effect == "Deny":
                # moto answers DENIED for a Deny that applies, and also for one whose condition
                # failed; only the former denies.
                if result == PermissionResult.DENIED and statement._check_conditions(context):
                    return Decision.EXPLICIT_DENY
            elif result == PermissionResult.PERMITTED:
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


def _matches_action(patterns: Any, action: str) -> bool:
    """IAM's case-insensitive wildcard match of `action` against one pattern or a list."""
    values = [patterns] if isinstance(patterns, str) else list(patterns or [])
    for pattern in values:
        regex = "^" + re.escape(str(pattern)).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        if re.match(regex, action, re.IGNORECASE):
            return True
    return False


def trusts_service(trust_policy: str, service: str) -> bool:
    """Does a role's trust policy let the service principal `service` call sts:AssumeRole?

    Only the statements' effect, principal and action are read: their conditions name the
    caller's account and source ARN, which the service itself fills in on AWS. (Pure, so the
    runner need not import moto's IAM to check a trust.)"""
    try:
        statements = json.loads(trust_policy or "{}").get("Statement", [])
    except ValueError:
        return False
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principals = (statement.get("Principal") or {}).get("Service", [])
        principals = [principals] if isinstance(principals, str) else list(principals)
        if service not in principals:
            continue
        if "NotAction" in statement:
            if not _matches_action(statement["NotAction"], "sts:AssumeRole"):
                return True
        elif _matches_action(statement.get("Action"), "sts:AssumeRole"):
            return True
    return False


# --- identities (in the emulator's process, on moto's own backends) -----------------------------


@dataclass(frozen=True)
class Principal:
    """Who signed a request."""

    arn: str
    """`arn:aws:sts::<account>:assumed-role/<role>/<session>` or `arn:aws:iam::<account>:user/<name>`."""
    role: str
    """The role name for an assumed role; '' for a user."""
    user: str
    """The user name for an IAM user; '' for an assumed role."""
    session: str = ""

    @property
    def label(self) -> str:
        """The role (or user) the access log files this principal's calls under."""
        return self.role or f"user/{self.user}"


class AuthenticationFailure(Exception):
    """The request's credentials are unknown or its signature is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        """'credentials' or 'signature'."""


class MotoIdentities:
    """Callers and their identity policies, read from moto's IAM and STS backends in this process."""

    def __init__(self, account: str = DEFAULT_ACCOUNT) -> None:
        self.account = account

    def authenticate(
        self, method: str, path: str, query: str, headers: Any, body: bytes, region: str, operation: str
    ) -> tuple[Principal, list[str]]:
        """Check the SigV4 signature with moto's `IAMRequest`; the principal and its policies."""
        from moto.core.exceptions import InvalidClientTokenIdError, SignatureDoesNotMatchError
        from moto.iam.access_control import IAMRequest

        full_path = path + (f"?{query}" if query else "")
        try:
            request = IAMRequest(
                account_id=self.account,
                method=method,
                path=full_path,
                data=dict(urllib.parse.parse_qsl(query)),
                body=body,
                headers=headers,
                action=operation or "Unknown",
            )
            request.check_signature()
        except InvalidClientTokenIdError:
            raise AuthenticationFailure("credentials") from None
        except SignatureDoesNotMatchError:
            raise AuthenticationFailure("signature") from None
        except Exception as exc:
            if getattr(exc, "code", None) in (401, 403):  # moto's other refusals (a bad token)
                raise AuthenticationFailure("credentials") from None
            # The signature cannot even be computed (a signed header is missing): it does not match.
            raise AuthenticationFailure("signature") from None
        key = request._access_key
        arn = str(key.arn)
        documents = [policy_text(p) for p in key.collect_policies()]
        if ":assumed-role/" in arn:
            role_name, _, session = arn.split(":assumed-role/", 1)[1].partition("/")
            return Principal(arn=arn, role=role_name, user="", session=session), documents
        return Principal(arn=arn, role="", user=arn.rsplit("/", 1)[-1]), documents


# --- the access log -----------------------------------------------------------------------------


class AccessLog:
    """Per role: the (action, resource) pairs it used and the ones it was denied (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.used: dict[str, Counter[tuple[str, str]]] = {}
        self.denied: dict[str, Counter[tuple[str, str]]] = {}

    def record(self, label: str, permissions: Sequence[Permission], denied: Permission | None) -> None:
        """Record one authorized request (every permission used) or one denial."""
        with self._lock:
            if denied is not None:
                self.denied.setdefault(label, Counter())[(denied.action, denied.resource)] += 1
                return
            counter = self.used.setdefault(label, Counter())
            for permission in permissions:
                counter[(permission.action, permission.resource)] += 1

    def denials(self) -> dict[str, int]:
        """AccessDenied answers per role."""
        with self._lock:
            return {label: sum(c.values()) for label, c in self.denied.items()}

    def to_json(self) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
        """{role: {"used"|"denied": {action: {resource: count}}}}."""

        def nested(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (action, resource), count in sorted(counter.items()):
                out.setdefault(action, {})[resource] = count
            return out

        with self._lock:
            labels = set(self.used) | set(self.denied)
            return {
                label: {
                    "used": nested(self.used.get(label, Counter())),
                    "denied": nested(self.denied.get(label, Counter())),
                }
                for label in sorted(labels)
            }
