"""reconciler (scheduled every 5 minutes): the sweeper. Nothing stays stuck behind a DLQ nobody reads.

Trigger: EventBridge schedule. Out: payment.requested (`reconciled: true`), payment.approved,
and any payment's owed state event (payment.declined/captured/failed/cancelled/refunded); the
events of the ledger's dead-letter queue, back to the ledger's queue.

First, the ledger's DLQ is redriven (DESIGN §3 invariants 1 and 5: an event whose ledger records
exhausted their receives, through throttling or a crash, would otherwise never get its row and
the books would stop balancing). Up to REDRIVE_PER_RUN messages per run, ten per ReceiveMessage
(1 s wait, so every SQS server is asked): each valid event envelope goes back to the ledger
queue unchanged (SendMessageBatch: same body, same message attributes) and is deleted from the
DLQ only once SQS accepted the send. A message that is not an event (`contract.parse_event`
raises) stays in the DLQ: logged once per run with its id and reason, counted (PoisonMessages),
and made visible again at the end of the run so the DLQ's depth alarm keeps firing until an
operator removes it. A send that failed leaves its message in the DLQ for the next run. Sending
twice is harmless: the ledger writes with conditional puts (`attribute_not_exists`), so an event
redriven after its row was written (a delete that failed, a crash between send and delete, the
same event in both queues) is dropped as a duplicate and adds no row.

Then the payments:

Per run, bounded per category, oldest first, only payments older than RECONCILE_AFTER_SECONDS:
a. PENDING (byStateCreatedAt): the request was most likely lost before reaching the queue.
   The payment is claimed (`reconciledAt`, conditional: still PENDING, not reconciled this
   period) and payment.requested is re-published.
b. APPROVED by `approvedAt`: its payment.approved never got captured or cancelled (records that
   exhausted funding-update's retries sit in its DLQ). Claimed the same way
   (`approvalResentAt`), then payment.approved is re-published with the processor's own eventId
   and occurredAt, so funding_update captures it or, if the campaign closed or its deadline
   passed, requests its cancel.
c. every payment in the sparse byOwed index (`owed` set, owedSince older than the cutoff): the
   follow-up its last transition left undone (see lambdas.shared.owed): FAILED/CANCELLED without
   `voidedAt` are voided at the gateway first; then the state's event is published (same
   eventId and occurredAt as the original publisher's); then `owed` is removed. This is what
   settles CANCELLED payments whose cancel records exhausted transaction_check's retries, FAILED
   payments whose void kept failing in payment_retry, and lost declined/captured/refunded events.
The budget counts only payments the run can act on: already-claimed ones are filtered out by
DynamoDB (FilterExpression), so a block of claimed but still-stuck payments at the head of the
index can never starve a lost one behind it.

Double work is harmless: the processor authorizes idempotently and transitions conditionally,
funding_update captures only APPROVED payments conditionally, the gateway voids once per
payment, and every re-published event is identical to the first (recorded once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared import aws
from lambdas.shared.config import env_int, env_str, require_environment
from lambdas.shared.contract import (
    ENV_LEDGER_DEAD_LETTER_QUEUE_URL,
    ENV_LEDGER_QUEUE_URL,
    ENV_RECONCILE_AFTER_SECONDS,
    OWED_ATTRIBUTE,
    OWED_SINCE_ATTRIBUTE,
    PAYMENTS_BY_OWED_INDEX,
    PAYMENTS_BY_STATE_INDEX,
    EnvelopeError,
    EventType,
    Metric,
    PaymentState,
    make_event,
    parse_event,
)
from lambdas.shared.events import derived_event_id, publish_all, state_event
from lambdas.shared.owed import settle
from lambdas.shared.payments import STATE, payments_table
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.specs.reconciler import SPEC

require_environment(SPEC.environment, function=SPEC.name)

MAX_PER_RUN = 500
"""Bounded work per category and run (owed work: per owed state); the rest waits for the next tick."""
SETTLE_CHUNK = 50
"""Owed payments settled together (one PublishBatch per ten of them)."""
TIME_RESERVE_MS = 10_000
"""Stop starting new work when less than this is left of the invocation."""
OWED_ORDER = (
    PaymentState.FAILED,
    PaymentState.CANCELLED,
    PaymentState.DECLINED,
    PaymentState.CAPTURED,
    PaymentState.REFUNDED,
)
"""Held authorizations first, then lost events."""
REDRIVE_PER_RUN = 100
"""Messages received from the ledger's DLQ per run (events and poison alike); the rest waits."""
REDRIVE_WAIT_SECONDS = 1
"""ReceiveMessage wait: a long poll asks every SQS server (a short poll may answer empty while
messages wait); it is spent once per run, on the receive that finds the DLQ empty."""
REDRIVE_VISIBILITY_MARGIN_SECONDS = 5
"""Received messages stay hidden for the rest of the invocation plus this: a run sees each
message once, and after a crash the next run (or the schedule's retry) sees them again."""
REDRIVE_VISIBILITY_SECONDS = 120
"""The same without a Lambda context to ask (longer than the deployed 60 s timeout)."""
SQS_MAX_VISIBILITY_SECONDS = 43_200
SQS_BATCH_ENTRIES = 10
"""SendMessageBatch's and ReceiveMessage's maximum."""
SQS_BATCH_BYTES = 262_144
"""Payload bytes per SendMessageBatch we stay under (SQS's long-standing limit; 1 MiB today)."""

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time_left(context: Any) -> bool:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return True
    return int(context.get_remaining_time_in_millis()) > TIME_RESERVE_MS


def _claim(
    payment_id: str, state: PaymentState, field: str, counter: str, now: str, cutoff: str
) -> dict[str, Any] | None:
    """Mark the payment as handled this period (conditional), so concurrent runs act once."""
    return aws.update_item(
        payments_table(),
        {"paymentId": payment_id},
        f"SET {field} = :now, {counter} = if_not_exists({counter}, :zero) + :one",
        {":now": now, ":cutoff": cutoff, ":state": str(state), ":zero": 0, ":one": 1},
        condition=f"#state = :state AND (attribute_not_exists({field}) OR {field} < :cutoff)",
        names=STATE,
    )


def _stale(
    state: PaymentState, claim_field: str, cutoff: str, extra_filter: str = ""
) -> Iterator[dict[str, Any]]:
    """Oldest-first payments in `state` created before the cutoff and not claimed this period."""
    return aws.query(
        payments_table(),
        index=PAYMENTS_BY_STATE_INDEX,
        key_condition="#state = :state AND createdAt < :cutoff",
        values={":state": str(state), ":cutoff": cutoff},
        names=STATE,
        filter_expression=f"{extra_filter}(attribute_not_exists({claim_field}) OR {claim_field} < :cutoff)",
        limit=MAX_PER_RUN,
    )


def _republish(
    payments: Iterator[dict[str, Any]],
    claim: Callable[[dict[str, Any]], dict[str, Any] | None],
    build: Callable[[dict[str, Any]], dict[str, Any]],
    context: Any,
) -> tuple[int, int]:
    """Claim each payment and publish its event (PublishBatch); returns (published, skipped)."""
    events: list[dict[str, Any]] = []
    skipped = 0
    for payment in payments:
        claimed = claim(payment)
        if claimed is None:
            skipped += 1
        else:
            events.append(build(claimed))
        if not _time_left(context):
            break
    unsent = publish_all(events)
    for index in unsent:
        logger.error(
            "re-publication failed; the payment is re-claimed next period",
            extra={"paymentId": events[index]["paymentId"], "eventType": events[index]["type"]},
        )
    return len(events) - len(unsent), skipped


def _requested_event(claimed: dict[str, Any]) -> dict[str, Any]:
    attempt = int(claimed["reconcileCount"])
    return make_event(
        EventType.PAYMENT_REQUESTED,
        payment_id=claimed["paymentId"],
        funding_id=claimed["fundingId"],
        user_id=claimed.get("userId"),
        amount=claimed.get("amount"),
        occurred_at=claimed["reconciledAt"],
        event_id=derived_event_id(EventType.PAYMENT_REQUESTED, f"{claimed['paymentId']}#reconcile{attempt}"),
        paymentMethod=claimed.get("paymentMethod"),
        email=claimed.get("email"),
        reconciled=True,
    )


def _sweep_owed(state: PaymentState, cutoff: str, context: Any) -> tuple[int, int]:
    """Complete the owed work of `state` older than the cutoff; returns (settled, unfinished)."""
    items = aws.query(
        payments_table(),
        index=PAYMENTS_BY_OWED_INDEX,
        key_condition=f"{OWED_ATTRIBUTE} = :state AND {OWED_SINCE_ATTRIBUTE} < :cutoff",
        values={":state": str(state), ":cutoff": cutoff},
        limit=MAX_PER_RUN,
    )
    settled = unfinished = 0
    chunk: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal settled, unfinished
        outcome = settle(chunk, logger)
        settled += len(chunk) - len(outcome.unfinished)
        unfinished += len(outcome.unfinished)
        for payment_id, why in outcome.unfinished.items():
            logger.warning(
                "owed work not done yet", extra={"paymentId": payment_id, "state": state, "reason": why}
            )
        chunk.clear()

    for payment in items:
        chunk.append(payment)
        if len(chunk) >= SETTLE_CHUNK:
            flush()
            if not _time_left(context):
                break
    if chunk:
        flush()
    return settled, unfinished


@dataclass
class _Redrive:
    """One run's redrive of the ledger's DLQ."""

    redriven: int = 0
    poison: int = 0
    unsent: int = 0
    kept: dict[str, str] = field(default_factory=dict)
    """messageId → receipt handle of messages left in the DLQ (made visible again at the end)."""


def _entry_bytes(message: dict[str, Any]) -> int:
    """SQS's size of a message: body plus each attribute's name, type and value."""
    size = len(message.get("Body", "").encode())
    for name, value in (message.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b""))
    return size


def _send_groups(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """`messages` in SendMessageBatch-sized groups (≤ 10 entries, ≤ SQS_BATCH_BYTES unless alone)."""
    group: list[dict[str, Any]] = []
    size = 0
    for message in messages:
        grown = size + _entry_bytes(message)
        if group and (len(group) == SQS_BATCH_ENTRIES or grown > SQS_BATCH_BYTES):
            yield group
            group, grown = [], _entry_bytes(message)
        group.append(message)
        size = grown
    if group:
        yield group


def _attributes(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message attributes as received, in the shape SendMessageBatch takes."""
    kept = ("DataType", "StringValue", "BinaryValue")
    return {
        name: {key: value[key] for key in kept if key in value}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }


def _send_back(
    sqs: Any, queue_url: str, messages: list[dict[str, Any]], run: _Redrive
) -> list[dict[str, Any]]:
    """Send `messages` to the ledger queue unchanged; returns those SQS accepted (the rest are kept)."""
    sent: list[dict[str, Any]] = []
    for group in _send_groups(messages):
        by_id = {str(index): message for index, message in enumerate(group)}
        entries = []
        for entry_id, message in by_id.items():
            entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = _attributes(message)
            entries.append(entry)
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            response = {
                "Failed": [{"Id": i, "Code": aws.error_code(exc) or type(exc).__name__} for i in by_id]
            }
        for failure in response.get("Failed") or []:
            unsent = by_id.pop(str(failure.get("Id")), None)
            if unsent is None:
                continue
            logger.error(
                "ledger event not sent back from the ledger's DLQ; it stays there for the next run",
                extra={
                    "messageId": unsent["MessageId"],
                    "error": failure.get("Code"),
                    "detail": failure.get("Message"),
                },
            )
            run.unsent += 1
            run.kept[unsent["MessageId"]] = unsent["ReceiptHandle"]
        sent.extend(by_id.values())
    return sent


def _delete(sqs: Any, dlq_url: str, messages: list[dict[str, Any]]) -> None:
    """Delete sent messages from the DLQ; one left behind is sent again next run (a harmless duplicate)."""
    for message in messages:
        try:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "redriven ledger event not deleted from the DLQ; the next run sends it again (the ledger "
                "drops the duplicate)",
                extra={"messageId": message["MessageId"], "error": aws.error_code(exc) or str(exc)},
            )


def _release(sqs: Any, dlq_url: str, kept: dict[str, str]) -> None:
    """Make kept messages visible again now, so the DLQ's depth alarm stays in ALARM."""
    for message_id, receipt in kept.items():
        try:
            sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "kept message not made visible again; it reappears after the receive's visibility timeout",
                extra={"messageId": message_id, "error": aws.error_code(exc) or str(exc)},
            )


def _redrive_visibility(context: Any) -> int:
    """Seconds a received DLQ message stays hidden: as long as this invocation may still act on it."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return REDRIVE_VISIBILITY_SECONDS
    remaining = math.ceil(int(context.get_remaining_time_in_millis()) / 1000)
    return min(remaining + REDRIVE_VISIBILITY_MARGIN_SECONDS, SQS_MAX_VISIBILITY_SECONDS)


def redrive_ledger(context: Any) -> _Redrive:
    """Send the events of the ledger's DLQ back to the ledger queue (see the module docstring)."""
    sqs = aws.client("sqs")
    dlq_url = env_str(ENV_LEDGER_DEAD_LETTER_QUEUE_URL)
    queue_url = env_str(ENV_LEDGER_QUEUE_URL)
    run = _Redrive()
    received = 0
    while received < REDRIVE_PER_RUN and _time_left(context):
        try:
            messages = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH_ENTRIES, REDRIVE_PER_RUN - received),
                WaitTimeSeconds=REDRIVE_WAIT_SECONDS,
                VisibilityTimeout=_redrive_visibility(context),
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except (BotoCoreError, ClientError) as exc:
            logger.error(
                "cannot receive from the ledger's DLQ; its events wait for the next run (check the "
                f"reconciler's grants and {ENV_LEDGER_DEAD_LETTER_QUEUE_URL})",
                extra={"queueUrl": dlq_url, "error": aws.error_code(exc) or str(exc)},
            )
            break
        if not messages:
            break
        received += len(messages)
        events = []
        for message in messages:
            try:
                parse_event(message.get("Body", ""))
            except EnvelopeError as exc:
                if message["MessageId"] not in run.kept:
                    run.poison += 1
                    logger.error(
                        "not an event: left in the ledger's DLQ for an operator (inspect it, then delete it)",
                        extra={
                            "messageId": message["MessageId"],
                            "reason": str(exc),
                            "bodyPrefix": message.get("Body", "")[:200],
                        },
                    )
                run.kept[message["MessageId"]] = message["ReceiptHandle"]
            else:
                events.append(message)
        sent = _send_back(sqs, queue_url, events, run)
        _delete(sqs, dlq_url, sent)
        run.redriven += len(sent)
    _release(sqs, dlq_url, run.kept)
    return run


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """One scheduled run; returns (and logs) how many payments each category acted on."""
    now = datetime.now(UTC)
    now_iso = _iso(now)
    cutoff = _iso(now - timedelta(seconds=env_int(ENV_RECONCILE_AFTER_SECONDS, minimum=1)))
    summary = {"republished": 0, "skipped": 0, "approvedResent": 0, "owedSettled": 0, "owedUnfinished": 0}

    redrive = redrive_ledger(context)
    summary.update(ledgerRedriven=redrive.redriven, ledgerPoison=redrive.poison, ledgerUnsent=redrive.unsent)

    published, skipped = _republish(
        _stale(PaymentState.PENDING, "reconciledAt", cutoff),
        lambda p: _claim(
            p["paymentId"], PaymentState.PENDING, "reconciledAt", "reconcileCount", now_iso, cutoff
        ),
        _requested_event,
        context,
    )
    summary["republished"], summary["skipped"] = published, skipped

    if _time_left(context):
        published, skipped = _republish(
            _stale(PaymentState.APPROVED, "approvalResentAt", cutoff, "approvedAt < :cutoff AND "),
            lambda p: _claim(
                p["paymentId"],
                PaymentState.APPROVED,
                "approvalResentAt",
                "approvalResendCount",
                now_iso,
                cutoff,
            ),
            state_event,
            context,
        )
        summary["approvedResent"] = published
        summary["skipped"] += skipped

    for state in OWED_ORDER:
        if not _time_left(context):
            logger.warning("out of time; the rest waits for the next run")
            break
        settled, unfinished = _sweep_owed(state, cutoff, context)
        summary["owedSettled"] += settled
        summary["owedUnfinished"] += unfinished

    count(metrics, Metric.PAYMENTS_RECONCILED, summary["republished"])
    count(metrics, Metric.APPROVALS_RESENT, summary["approvedResent"])
    count(metrics, Metric.OWED_WORK_SETTLED, summary["owedSettled"])
    count(metrics, Metric.LEDGER_EVENTS_REDRIVEN, redrive.redriven)
    count(metrics, Metric.POISON_MESSAGES, redrive.poison)
    metrics.flush_metrics()
    logger.info("sweeper run", extra={**summary, "cutoff": cutoff})
    return summary
