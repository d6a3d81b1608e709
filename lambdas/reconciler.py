"""reconciler (scheduled every 5 minutes): the sweeper. Nothing stays stuck behind a DLQ nobody reads.

Trigger: EventBridge schedule. Out: payment.requested (`reconciled: true`), payment.approved,
and any payment's owed state event (payment.declined/captured/failed/cancelled/refunded).

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

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_int, require_environment
from lambdas.shared.contract import (
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_PG_GATEWAY_FUNCTION,
    ENV_RECONCILE_AFTER_SECONDS,
    OWED_ATTRIBUTE,
    OWED_SINCE_ATTRIBUTE,
    PAYMENTS_BY_OWED_INDEX,
    PAYMENTS_BY_STATE_INDEX,
    PAYMENTS_TABLE,
    EventType,
    Metric,
    PaymentState,
    make_event,
)
from lambdas.shared.events import derived_event_id, publish_all, state_event
from lambdas.shared.owed import settle
from lambdas.shared.payments import STATE, payments_table
from lambdas.shared.telemetry import count, function_logger, function_metrics

FUNCTION = "reconciler"
ENVIRONMENT: tuple[str, ...] = (
    PAYMENTS_TABLE.env_var,
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_RECONCILE_AFTER_SECONDS,
    ENV_PG_GATEWAY_FUNCTION,
)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
ACCESS: dict[str, tuple[str, ...]] = {
    # Query: stale PENDING/APPROVED and owed payments; UpdateItem: claims, voidedAt, clearing `owed`.
    PAYMENTS_TABLE.env_var: (
        f"dynamodb:Query@{PAYMENTS_BY_STATE_INDEX}",
        f"dynamodb:Query@{PAYMENTS_BY_OWED_INDEX}",
        "dynamodb:UpdateItem",
    ),
    ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
    ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
}
require_environment(ENVIRONMENT, function=FUNCTION)

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

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


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


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """One scheduled run; returns (and logs) how many payments each category acted on."""
    now = datetime.now(UTC)
    now_iso = _iso(now)
    cutoff = _iso(now - timedelta(seconds=env_int(ENV_RECONCILE_AFTER_SECONDS, minimum=1)))
    summary = {"republished": 0, "skipped": 0, "approvedResent": 0, "owedSettled": 0, "owedUnfinished": 0}

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
    metrics.flush_metrics()
    logger.info("sweeper run", extra={**summary, "cutoff": cutoff})
    return summary
