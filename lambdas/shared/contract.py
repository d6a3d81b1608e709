"""The platform's wire contract: event envelope, states, table layouts, environment names, metrics.

One place, imported by the API (producer), the functions (consumers), their specs
(`lambdas/specs/`: which events each queue takes, which variables each function reads) and the
infrastructure (which derives tables and environments from it). Dependency-free on
purpose: it ships inside every function archive and the API image.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class PaymentState(StrEnum):
    """A payment's lifecycle (DESIGN §3)."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


TERMINAL_PAYMENT_STATES = frozenset(
    {
        PaymentState.CAPTURED,
        PaymentState.DECLINED,
        PaymentState.FAILED,
        PaymentState.CANCELLED,
        PaymentState.REFUNDED,
    }
)
"""CAPTURED is terminal for the payment flow; only a failed campaign moves it on to REFUNDED."""

OWED_STATES = TERMINAL_PAYMENT_STATES
"""States whose entry leaves follow-up work owed (`owed` = the state, set in the same write):
the state's event for DECLINED, CAPTURED and REFUNDED; the void at the gateway, then the event,
for FAILED and CANCELLED. Whoever completes the work REMOVEs `owed` (condition `owed = :state`)."""
OWED_ATTRIBUTE = "owed"
OWED_SINCE_ATTRIBUTE = "owedSince"
"""ISO UTC ms of the write that made the work owed (sort key of the byOwed index)."""

STATE_TIMESTAMP: dict[PaymentState, str] = {
    PaymentState.APPROVED: "approvedAt",
    PaymentState.CAPTURED: "capturedAt",
    PaymentState.DECLINED: "declinedAt",
    PaymentState.FAILED: "failedAt",
    PaymentState.CANCELLED: "cancelledAt",
    PaymentState.REFUNDED: "refundedAt",
}
"""The payment attribute holding the moment it entered each state (its event's occurredAt)."""
STATE_REASON: dict[PaymentState, str] = {
    PaymentState.DECLINED: "declineReason",
    PaymentState.FAILED: "failureReason",
    PaymentState.CANCELLED: "cancelReason",
    PaymentState.REFUNDED: "refundReason",
}
"""The payment attribute holding the reason its event carries, per state."""


class CampaignState(StrEnum):
    """A campaign's lifecycle."""

    OPEN = "OPEN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DELETED = "DELETED"


class EventType(StrEnum):
    """Every event type on the platform's topics. The SNS message attribute `type` carries it."""

    PAYMENT_REQUESTED = "payment.requested"
    PAYMENT_APPROVED = "payment.approved"
    PAYMENT_DECLINED = "payment.declined"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_CANCEL_REQUESTED = "payment.cancel_requested"
    PAYMENT_CANCELLED = "payment.cancelled"
    PAYMENT_REFUNDED = "payment.refunded"
    FUNDING_GOAL_REACHED = "funding.goal_reached"
    FUNDING_SUCCEEDED = "funding.succeeded"
    FUNDING_FAILED = "funding.failed"


EVENT_OF_STATE: dict[PaymentState, EventType] = {
    PaymentState.APPROVED: EventType.PAYMENT_APPROVED,
    PaymentState.CAPTURED: EventType.PAYMENT_CAPTURED,
    PaymentState.DECLINED: EventType.PAYMENT_DECLINED,
    PaymentState.FAILED: EventType.PAYMENT_FAILED,
    PaymentState.CANCELLED: EventType.PAYMENT_CANCELLED,
    PaymentState.REFUNDED: EventType.PAYMENT_REFUNDED,
}
"""The event that announces a payment's entry into each state (dated by its STATE_TIMESTAMP)."""


class Topic(StrEnum):
    """Logical topic names; the infrastructure creates one SNS topic per member."""

    PAYMENTS = "payments"
    FUNDING_TARGET = "funding-target"


TOPIC_OF_EVENT: dict[EventType, Topic] = {
    EventType.PAYMENT_REQUESTED: Topic.PAYMENTS,
    EventType.PAYMENT_APPROVED: Topic.PAYMENTS,
    EventType.PAYMENT_DECLINED: Topic.PAYMENTS,
    EventType.PAYMENT_FAILED: Topic.PAYMENTS,
    EventType.PAYMENT_CAPTURED: Topic.PAYMENTS,
    EventType.PAYMENT_CANCELLED: Topic.PAYMENTS,
    EventType.PAYMENT_REFUNDED: Topic.PAYMENTS,
    EventType.PAYMENT_CANCEL_REQUESTED: Topic.FUNDING_TARGET,
    EventType.FUNDING_GOAL_REACHED: Topic.FUNDING_TARGET,
    EventType.FUNDING_SUCCEEDED: Topic.FUNDING_TARGET,
    EventType.FUNDING_FAILED: Topic.FUNDING_TARGET,
}
"""Which topic each event is published on (DESIGN §1)."""


# --- the event envelope -------------------------------------------------------------------

CAMPAIGN_EVENT_PAYMENT_ID = "-"
"""`paymentId` of a campaign event no single payment caused (funding.failed / funding.succeeded at
the deadline): the envelope requires the field, and "-" can never be a real payment id."""

ENVELOPE_REQUIRED = ("eventId", "type", "occurredAt", "paymentId", "fundingId")
"""Fields every event carries. Payment events also carry userId and amount."""


def utc_now_iso() -> str:
    """ISO 8601 UTC timestamp with milliseconds, sortable as a string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(
    event_type: EventType | str,
    *,
    payment_id: str,
    funding_id: str,
    user_id: str | None = None,
    amount: int | None = None,
    occurred_at: str | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build an event envelope. Extra keyword fields (paymentMethod, attempt, reason…) ride along."""
    event: dict[str, Any] = {
        "eventId": event_id or str(uuid.uuid4()),
        "type": str(EventType(event_type)),
        "occurredAt": occurred_at or utc_now_iso(),
        "paymentId": payment_id,
        "fundingId": funding_id,
    }
    if user_id is not None:
        event["userId"] = user_id
    if amount is not None:
        event["amount"] = amount
    event.update({k: v for k, v in extra.items() if v is not None})
    return event


def message_attributes(event: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The SNS message attributes subscription filter policies match on."""
    return {"type": {"DataType": "String", "StringValue": str(event["type"])}}


class EnvelopeError(ValueError):
    """A message body that is not a valid event envelope (a poison message)."""


def parse_event(body: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse and check an event body from SQS (raw SNS delivery). Raises EnvelopeError."""
    if isinstance(body, dict):
        event = body
    else:
        try:
            event = json.loads(body)
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"event body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise EnvelopeError("event body is not a JSON object")
    missing = [k for k in ENVELOPE_REQUIRED if not event.get(k)]
    if missing:
        raise EnvelopeError(f"event is missing {', '.join(missing)}")
    try:
        EventType(event["type"])
    except ValueError as exc:
        raise EnvelopeError(f"unknown event type {event['type']!r}") from exc
    if "amount" in event and (type(event["amount"]) is not int or event["amount"] <= 0):
        raise EnvelopeError("amount must be a positive integer")
    return event


# --- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (projection ALL)."""

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table's layout. Key attributes are strings (S)."""

    logical_name: str
    env_var: str
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    doc: str = ""

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """Every attribute that appears in a key of the table or an index (for AttributeDefinitions)."""
        names: list[str] = []
        for attr in (self.partition_key, self.sort_key):
            if attr and attr not in names:
                names.append(attr)
        for index in self.indexes:
            for attr in (index.partition_key, index.sort_key):
                if attr and attr not in names:
                    names.append(attr)
        return tuple(names)


FUNDINGS_BY_STATE_INDEX = "byStateEndDate"
PAYMENTS_BY_FUNDING_INDEX = "byFunding"
PAYMENTS_BY_STATE_INDEX = "byStateCreatedAt"
PAYMENTS_BY_OWED_INDEX = "byOwed"
"""Sparse: only payments with `owed` set (partition `owed`, sort `owedSince`); the sweeper's queue."""

FUNDINGS_TABLE = TableSpec(
    logical_name="fundings",
    env_var="FUNDINGS_TABLE",
    partition_key="fundingId",
    indexes=(IndexSpec(FUNDINGS_BY_STATE_INDEX, "state", "endDate"),),
    doc="Campaigns. `fundingAmount` is the sum of CAPTURED payments; byStateEndDate finds due campaigns.",
)
PAYMENTS_TABLE = TableSpec(
    logical_name="payments",
    env_var="PAYMENTS_TABLE",
    partition_key="paymentId",
    indexes=(
        IndexSpec(PAYMENTS_BY_FUNDING_INDEX, "fundingId", "createdAt"),
        IndexSpec(PAYMENTS_BY_STATE_INDEX, "state", "createdAt"),
        IndexSpec(PAYMENTS_BY_OWED_INDEX, OWED_ATTRIBUTE, OWED_SINCE_ATTRIBUTE),
    ),
    doc=(
        "Payments. byFunding lists a campaign's payments; byStateCreatedAt finds stale PENDING and"
        " APPROVED ones; byOwed (sparse) holds the payments whose follow-up work is owed."
    ),
)
TRANSACTIONS_TABLE = TableSpec(
    logical_name="transactions",
    env_var="TRANSACTIONS_TABLE",
    partition_key="fundingId",
    sort_key="recordKey",
    doc="Append-only audit log: one item per event, recordKey = '<occurredAt>#<eventId>'.",
)
IDEMPOTENCY_TABLE = TableSpec(
    logical_name="idempotency",
    env_var="IDEMPOTENCY_TABLE",
    partition_key="id",
    ttl_attribute="expiration",
    doc="Powertools idempotency records (key `id`, TTL `expiration`), shared by the API and functions.",
)

TABLES: tuple[TableSpec, ...] = (FUNDINGS_TABLE, PAYMENTS_TABLE, TRANSACTIONS_TABLE, IDEMPOTENCY_TABLE)


GATEWAY_RECORD_PREFIX = "pg_gateway#payment#"
"""Key prefix (in the idempotency table, no TTL) of pg_gateway's one record per payment: the
gateway's log. Attributes: paymentId, amount, authorizedAt, authorizationRef, declinedAt,
voidedAt, voids (voids that took effect: 0 or 1), refundedAt, refunds (0 or 1), authorizeRefused."""


def gateway_record_id(payment_id: str) -> str:
    """The idempotency-table key of a payment's gateway record."""
    return f"{GATEWAY_RECORD_PREFIX}{payment_id}"


def ledger_record_key(event: dict[str, Any]) -> str:
    """Sort key of an event's ledger item: time-ordered, unique per event."""
    return f"{event['occurredAt']}#{event['eventId']}"


# --- environment variable names the infrastructure sets -----------------------------------

ENV_PAYMENTS_TOPIC_ARN = "PAYMENTS_TOPIC_ARN"
ENV_FUNDING_TARGET_TOPIC_ARN = "FUNDING_TARGET_TOPIC_ARN"
ENV_PAYMENT_PROCESSING_QUEUE_URL = "PAYMENT_PROCESSING_QUEUE_URL"
ENV_LEDGER_QUEUE_URL = "LEDGER_QUEUE_URL"
"""The ledger's queue: the sweeper sends the events of the ledger's DLQ back to it."""
ENV_LEDGER_DEAD_LETTER_QUEUE_URL = "LEDGER_DEAD_LETTER_QUEUE_URL"
"""The ledger's dead-letter queue: the sweeper redrives it every run (nothing else reads it)."""
ENV_PG_GATEWAY_FUNCTION = "PG_GATEWAY_FUNCTION_NAME"
ENV_PG_TRANSIENT_FAILURE_RATE = "PG_TRANSIENT_FAILURE_RATE"
ENV_PG_DECLINE_RATE = "PG_DECLINE_RATE"
ENV_PG_LATENCY_MS = "PG_LATENCY_MS"
ENV_PG_SEED = "PG_SEED"
ENV_RETRY_MAX_ATTEMPTS = "RETRY_MAX_ATTEMPTS"
ENV_RETRY_BASE_DELAY_SECONDS = "RETRY_BASE_DELAY_SECONDS"
ENV_RETRY_MAX_DELAY_SECONDS = "RETRY_MAX_DELAY_SECONDS"
ENV_RECONCILE_AFTER_SECONDS = "RECONCILE_AFTER_SECONDS"
ENV_SES_SENDER = "SES_SENDER"
ENV_COGNITO_USER_POOL_ID = "COGNITO_USER_POOL_ID"
ENV_COGNITO_APP_CLIENT_ID = "COGNITO_APP_CLIENT_ID"
ENV_SETTLEMENT_HORIZON_SECONDS = "SETTLEMENT_HORIZON_SECONDS"
"""Seconds after which a payment must be settled and its events recorded (the books auditor's
horizon; infra/payment_chain.py derives it from the retry settings)."""


def topic_env_var(topic: Topic) -> str:
    """The environment variable holding a topic's ARN."""
    return {Topic.PAYMENTS: ENV_PAYMENTS_TOPIC_ARN, Topic.FUNDING_TARGET: ENV_FUNDING_TARGET_TOPIC_ARN}[topic]


# --- metrics (EMF) ------------------------------------------------------------------------

METRICS_NAMESPACE = "Crowdfunding"
"""CloudWatch namespace of every business metric the functions emit."""
METRICS_SERVICE_DIMENSION = "service"
"""Powertools adds this dimension; its value is the function's POWERTOOLS_SERVICE_NAME."""


class Metric(StrEnum):
    """Business metric names (unit Count unless stated)."""

    PAYMENTS_REQUESTED = "PaymentsRequested"
    PAYMENTS_APPROVED = "PaymentsApproved"
    PAYMENTS_CAPTURED = "PaymentsCaptured"
    PAYMENTS_DECLINED = "PaymentsDeclined"
    PAYMENTS_FAILED = "PaymentsFailed"
    PAYMENTS_CANCELLED = "PaymentsCancelled"
    PAYMENTS_REFUNDED = "PaymentsRefunded"
    AMOUNT_CAPTURED = "AmountCaptured"  # unit: None, in the smallest currency unit
    GOALS_REACHED = "GoalsReached"
    RETRY_ATTEMPTS = "RetryAttempts"
    PAYMENTS_RECONCILED = "PaymentsReconciled"  # stale PENDING payments re-published
    # Not events: records a consumer failed towards its DLQ; the sweeper's (service reconciler):
    # messages it left in the ledger's DLQ this run.
    POISON_MESSAGES = "PoisonMessages"
    NOTIFICATIONS_SENT = "NotificationsSent"
    NOTIFICATIONS_SKIPPED = "NotificationsSkipped"  # no address known for the recipient, or no sender
    LEDGER_CONFLICTS = "LedgerConflicts"  # a different event reused a ledger key: kept the first row
    APPROVALS_RESENT = "ApprovalsResent"  # stale APPROVED payments whose payment.approved was re-sent
    OWED_WORK_SETTLED = "OwedWorkSettled"  # owed follow-up work (void, event) the sweeper completed
    LEDGER_EVENTS_REDRIVEN = "LedgerEventsRedriven"  # events the sweeper sent back from the ledger's DLQ
    # The books auditor (lambdas/books_auditor.py): findings per run, 0 included, so alarms see data.
    BOOKS_UNBALANCED = "BooksUnbalanced"  # campaigns whose ledger, fundingAmount and CAPTURED disagree
    LEDGER_EVENTS_MISSING = "LedgerEventsMissing"  # terminal events absent from the ledger past the horizon
    LEDGER_EVENTS_DUPLICATED = "LedgerEventsDuplicated"  # terminal events recorded more than once
    LEDGER_EVENTS_UNEXPECTED = "LedgerEventsUnexpected"  # events the payment's state contradicts
    PAYMENTS_STUCK = "PaymentsStuck"  # non-terminal past the horizon
    AUTHORIZATIONS_HELD = "AuthorizationsHeld"  # authorized, not captured, never voided, past the horizon
    REFUNDS_OVERDUE = "RefundsOverdue"  # failed/deleted campaigns still holding captured money
    CAMPAIGNS_AUDITED = "CampaignsAudited"
    AUDITS_COMPLETED = "AuditsCompleted"  # 1 per run that audited every campaign in scope
    BOOKS_FINDINGS = "BooksFindings"  # every finding of a run, whatever its kind (the one alarm on them)
