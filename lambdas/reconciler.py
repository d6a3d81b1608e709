"""reconciler (scheduled): re-publish payment.requested for payments stuck in PENDING.

Trigger: EventBridge schedule. Out: payment.requested (with `reconciled: true`).

A payment PENDING for longer than RECONCILE_AFTER_SECONDS (byStateCreatedAt index) was most
likely never picked up (its request event lost before it reached the queue). Before
re-publishing, the reconciler claims the payment with a conditional write (still PENDING, not
reconciled within the last RECONCILE_AFTER_SECONDS), so concurrent or back-to-back runs publish
once per period. It cannot cause a double capture: even if the original request is merely slow,
both copies go through payment_processor, whose gateway call is idempotent by paymentId and
whose PENDING→APPROVED write is conditional, and funding_update captures only APPROVED payments,
conditionally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_int, require_environment
from lambdas.shared.contract import (
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_RECONCILE_AFTER_SECONDS,
    PAYMENTS_BY_STATE_INDEX,
    PAYMENTS_TABLE,
    EventType,
    Metric,
    PaymentState,
    make_event,
)
from lambdas.shared.events import derived_event_id, publish
from lambdas.shared.payments import STATE, payments_table
from lambdas.shared.telemetry import count, function_logger, function_metrics

FUNCTION = "reconciler"
ENVIRONMENT: tuple[str, ...] = (PAYMENTS_TABLE.env_var, ENV_PAYMENTS_TOPIC_ARN, ENV_RECONCILE_AFTER_SECONDS)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

MAX_PER_RUN = 500
"""Bounded work per run; the rest waits for the next schedule tick."""

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _claim(payment_id: str, now: str, cutoff: str) -> dict[str, Any] | None:
    return aws.update_item(
        payments_table(),
        {"paymentId": payment_id},
        "SET reconciledAt = :now, reconcileCount = if_not_exists(reconcileCount, :zero) + :one",
        {":now": now, ":cutoff": cutoff, ":pending": str(PaymentState.PENDING), ":zero": 0, ":one": 1},
        condition="#state = :pending AND (attribute_not_exists(reconciledAt) OR reconciledAt < :cutoff)",
        names=STATE,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """One scheduled run; returns how many payments were re-published."""
    now = datetime.now(UTC)
    cutoff = _iso(now - timedelta(seconds=env_int(ENV_RECONCILE_AFTER_SECONDS, minimum=1)))
    stale = aws.query(
        payments_table(),
        index=PAYMENTS_BY_STATE_INDEX,
        key_condition="#state = :pending AND createdAt < :cutoff",
        values={":pending": str(PaymentState.PENDING), ":cutoff": cutoff},
        names=STATE,
        limit=MAX_PER_RUN,
    )
    republished = skipped = 0
    for payment in stale:
        claimed = _claim(payment["paymentId"], _iso(now), cutoff)
        if claimed is None:
            skipped += 1
            continue
        attempt = int(claimed["reconcileCount"])
        publish(
            make_event(
                EventType.PAYMENT_REQUESTED,
                payment_id=claimed["paymentId"],
                funding_id=claimed["fundingId"],
                user_id=claimed.get("userId"),
                amount=claimed.get("amount"),
                occurred_at=claimed["reconciledAt"],
                event_id=derived_event_id(
                    EventType.PAYMENT_REQUESTED, f"{claimed['paymentId']}#reconcile{attempt}"
                ),
                paymentMethod=claimed.get("paymentMethod"),
                email=claimed.get("email"),
                reconciled=True,
            )
        )
        republished += 1
        logger.info(
            "stale PENDING payment re-published",
            extra={"paymentId": claimed["paymentId"], "reconcileCount": attempt},
        )
    count(metrics, Metric.PAYMENTS_RECONCILED, republished)
    metrics.flush_metrics()
    logger.info("reconciler run", extra={"republished": republished, "skipped": skipped, "cutoff": cutoff})
    return {"republished": republished, "skipped": skipped}
