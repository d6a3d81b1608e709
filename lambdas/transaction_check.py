"""transaction_check: void approved payments that can no longer be captured.

Trigger: SQS transaction-check (payment.cancel_requested, funding.goal_reached from the
funding-target topic). Out: payment.cancelled.

- payment.cancel_requested: cancel that payment.
- funding.goal_reached: cancel every payment of the campaign still APPROVED (approved while the
  goal was being crossed; funding_update will never capture them since the campaign is closed).

Cancelling claims first, then calls the gateway: APPROVED→CANCELLED (conditional; `owed` =
CANCELLED in the same write) makes the payment uncapturable at once (funding_update captures
only APPROVED), then the void at the gateway (serialized per payment there), then `voidedAt`,
then payment.cancelled, then `owed` is cleared. A crash or a transient failure anywhere leaves
the payment CANCELLED and owed, which the redelivery finishes, and, should the record exhaust
its retries into the DLQ, the sweeper (reconciler) does. A CAPTURED payment is never cancelled
here (refunds are the closer's job).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared import aws
from lambdas.shared.batch import consume
from lambdas.shared.config import require_environment
from lambdas.shared.contract import (
    OWED_ATTRIBUTE,
    PAYMENTS_BY_FUNDING_INDEX,
    EventType,
    Metric,
    PaymentState,
    utc_now_iso,
)
from lambdas.shared.owed import settle
from lambdas.shared.payments import STATE, get_payment, payments_table, transition_or_current
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.specs.transaction_check import SPEC

require_environment(SPEC.environment, function=SPEC.name)

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


def cancel_payment(payment_id: str, reason: str) -> str:
    """Drive one payment to CANCELLED + voided + announced. Returns the state it ends in."""
    payment = get_payment(payment_id)
    if payment is None:
        raise LookupError(f"payment {payment_id} not found")
    if payment["state"] == PaymentState.APPROVED:
        claimed, current = transition_or_current(
            payment_id,
            PaymentState.APPROVED,
            PaymentState.CANCELLED,
            {"cancelledAt": utc_now_iso(), "cancelReason": reason},
        )
        if claimed is None:  # moved meanwhile (captured, or cancelled by a duplicate): decide on what won
            if current is None:
                raise LookupError(f"payment {payment_id} disappeared")
            payment = current
        else:
            payment = claimed
            count(metrics, Metric.PAYMENTS_CANCELLED)
            logger.info("payment cancelled", extra={"paymentId": payment_id, "reason": reason})
    if payment["state"] != PaymentState.CANCELLED:
        logger.info(
            "payment not cancellable here", extra={"paymentId": payment_id, "state": payment["state"]}
        )
        return str(payment["state"])
    if not payment.get(OWED_ATTRIBUTE) and payment.get("voidedAt"):
        return str(PaymentState.CANCELLED)  # voided and announced before
    outcome = settle([payment], logger)
    if not outcome.complete:
        raise RuntimeError(
            f"payment {payment_id} cancelled but not settled yet: {outcome.unfinished[payment_id]}"
        )
    return str(PaymentState.CANCELLED)


def _approved_payments_of(funding_id: str) -> list[str]:
    """Payment ids of the campaign still APPROVED (or CANCELLED with its void or event still owed)."""
    items = aws.query(
        payments_table(),
        index=PAYMENTS_BY_FUNDING_INDEX,
        key_condition="fundingId = :fid",
        values={
            ":fid": funding_id,
            ":approved": str(PaymentState.APPROVED),
            ":cancelled": str(PaymentState.CANCELLED),
        },
        names=STATE,
        filter_expression=(
            "#state = :approved OR (#state = :cancelled AND"
            f" (attribute_not_exists(voidedAt) OR attribute_exists({OWED_ATTRIBUTE})))"
        ),
    )
    return [item["paymentId"] for item in items]


def _process(event: dict[str, Any], record: SQSRecord) -> None:
    if event["type"] == EventType.PAYMENT_CANCEL_REQUESTED:
        cancel_payment(event["paymentId"], event.get("reason") or "cancel requested")
        return
    errors: list[str] = []
    for payment_id in _approved_payments_of(event["fundingId"]):
        try:
            cancel_payment(payment_id, "the campaign had already reached its goal")
        except Exception as exc:
            logger.warning(
                "could not cancel payment yet", extra={"paymentId": payment_id, "reason": str(exc)}
            )
            errors.append(payment_id)
    if errors:
        raise RuntimeError(f"{len(errors)} payment(s) not cancelled yet: {', '.join(errors)}")


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of cancel requests / goal-reached events → partial batch response."""
    return consume(
        event,
        context,
        _process,
        accepted={EventType.PAYMENT_CANCEL_REQUESTED, EventType.FUNDING_GOAL_REACHED},
        logger=logger,
        metrics=metrics,
    )
