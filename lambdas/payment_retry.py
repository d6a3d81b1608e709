"""payment_retry: give failed payment requests another go, later; give up cleanly.

Trigger: SQS payment-processing-dlq (payment.requested that failed maxReceiveCount times in the
processing queue). Out: the same event re-sent to PAYMENT_PROCESSING_QUEUE_URL with
`attempt` + 1 and DelaySeconds = min(base · 2^(attempt-1), RETRY_MAX_DELAY_SECONDS, 900); after
RETRY_MAX_ATTEMPTS, the payment is marked FAILED and payment.failed is published.

Nothing is dropped: every record either re-enters the processing queue, settles the payment as
FAILED, or fails (stays in the DLQ and is retried). The re-send is idempotent per
(eventId, attempt), so a crash after sending does not fork the payment into two copies.
Giving up also voids at the gateway: an authorization whose answer was lost (a timeout) must
not keep holding the backer's money. If that void fails, the record stays in the DLQ until it
succeeds (the payment is already FAILED and announced).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared import aws
from lambdas.shared.batch import consume
from lambdas.shared.config import env_int, env_str, require_environment
from lambdas.shared.contract import (
    ENV_PAYMENT_PROCESSING_QUEUE_URL,
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_PG_GATEWAY_FUNCTION,
    ENV_RETRY_BASE_DELAY_SECONDS,
    ENV_RETRY_MAX_ATTEMPTS,
    ENV_RETRY_MAX_DELAY_SECONDS,
    IDEMPOTENCY_TABLE,
    PAYMENTS_TABLE,
    TERMINAL_PAYMENT_STATES,
    EventType,
    Metric,
    PaymentState,
    make_event,
    message_attributes,
    utc_now_iso,
)
from lambdas.shared.events import derived_event_id, payment_event, publish
from lambdas.shared.gateway import gateway_client
from lambdas.shared.idempotency import run_once
from lambdas.shared.payments import get_payment, payments_table, transition
from lambdas.shared.telemetry import count, function_logger, function_metrics

FUNCTION = "payment_retry"
ENVIRONMENT: tuple[str, ...] = (
    PAYMENTS_TABLE.env_var,
    IDEMPOTENCY_TABLE.env_var,
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_PAYMENT_PROCESSING_QUEUE_URL,
    ENV_PG_GATEWAY_FUNCTION,
    ENV_RETRY_MAX_ATTEMPTS,
)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = (ENV_RETRY_BASE_DELAY_SECONDS, ENV_RETRY_MAX_DELAY_SECONDS)
require_environment(ENVIRONMENT, function=FUNCTION)

SQS_MAX_DELAY_SECONDS = 900
DEFAULT_BASE_DELAY_SECONDS = 30
FAILURE_REASON = "gateway unavailable after retries"

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


def backoff_seconds(attempt: int) -> int:
    """Delay before attempt `attempt + 1`: exponential in the attempts made, capped at ≤ 900 s."""
    base = env_int(ENV_RETRY_BASE_DELAY_SECONDS, DEFAULT_BASE_DELAY_SECONDS, minimum=0)
    cap = min(env_int(ENV_RETRY_MAX_DELAY_SECONDS, SQS_MAX_DELAY_SECONDS, minimum=0), SQS_MAX_DELAY_SECONDS)
    return int(min(base * 2 ** max(attempt - 1, 0), cap))


def _send(data: dict[str, Any]) -> dict[str, Any]:
    """Re-send one attempt to the processing queue (runs once per eventId+attempt)."""
    event, delay = data["event"], data["delaySeconds"]
    response = aws.client("sqs").send_message(
        QueueUrl=env_str(ENV_PAYMENT_PROCESSING_QUEUE_URL),
        MessageBody=json.dumps(event, separators=(",", ":")),
        DelaySeconds=delay,
        MessageAttributes=message_attributes(event),
    )
    return {"messageId": response["MessageId"], "delaySeconds": delay}


def _retry(event: dict[str, Any], attempt: int, context: Any) -> None:
    next_event = dict(event, attempt=attempt + 1)
    delay = backoff_seconds(attempt)
    run_once(
        FUNCTION,
        _send,
        {"event": next_event, "delaySeconds": delay},
        key="[event.eventId, event.attempt]",
        context=context,
    )
    count(metrics, Metric.RETRY_ATTEMPTS)
    logger.info("payment re-sent for another attempt", extra={"attempt": attempt + 1, "delaySeconds": delay})


def _give_up(event: dict[str, Any], payment: dict[str, Any] | None) -> None:
    payment_id = event["paymentId"]
    if payment is None:
        # Nothing to mark; announce the failure so the ledger and the backer hear about it.
        publish(
            make_event(
                EventType.PAYMENT_FAILED,
                payment_id=payment_id,
                funding_id=event["fundingId"],
                user_id=event.get("userId"),
                amount=event.get("amount"),
                event_id=derived_event_id(EventType.PAYMENT_FAILED, payment_id),
                reason="payment not found",
            )
        )
        count(metrics, Metric.PAYMENTS_FAILED)
        logger.error("gave up on a payment the table does not hold", extra={"paymentId": payment_id})
        return
    if payment["state"] == PaymentState.PENDING:
        updated = transition(
            payment_id,
            PaymentState.PENDING,
            PaymentState.FAILED,
            {"failedAt": utc_now_iso(), "failureReason": FAILURE_REASON},
        )
        if updated is None:
            raise RuntimeError(f"payment {payment_id} changed state while giving up; retrying")
        payment = updated
        count(metrics, Metric.PAYMENTS_FAILED)
        logger.warning("payment FAILED after the last retry", extra={"attempts": event.get("attempt", 1)})
    if payment["state"] != PaymentState.FAILED:
        return
    publish(
        payment_event(
            EventType.PAYMENT_FAILED,
            payment,
            occurred_at=payment["failedAt"],
            reason=payment.get("failureReason"),
        )
    )
    if not payment.get("voidedAt"):
        result = gateway_client().void(payment_id, payment["amount"])
        aws.update_item(
            payments_table(),
            {"paymentId": payment_id},
            "SET voidedAt = if_not_exists(voidedAt, :at), voidRef = :ref",
            {":at": result.processed_at, ":ref": result.reference},
        )


def _process(event: dict[str, Any], record: SQSRecord, context: Any) -> None:
    attempt = int(event.get("attempt", 1))
    payment = get_payment(event["paymentId"])
    state = payment["state"] if payment else None
    if state in TERMINAL_PAYMENT_STATES and state != PaymentState.FAILED:
        logger.info("payment already settled; retry not needed", extra={"state": state})
        return
    if state == PaymentState.FAILED:
        _give_up(event, payment)  # finish a give-up that stopped half-way
        return
    if attempt < env_int(ENV_RETRY_MAX_ATTEMPTS, minimum=1):
        _retry(event, attempt, context)
    elif state == PaymentState.APPROVED:
        # Approved but its event never got out: never fail an approved payment; keep it moving.
        logger.error("approved payment exhausted its retries; re-sending at the maximum delay")
        _retry(event, attempt, context)
    else:
        _give_up(event, payment)


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch from the processing DLQ → partial batch response."""
    return consume(
        event,
        context,
        lambda parsed, record: _process(parsed, record, context),
        accepted={EventType.PAYMENT_REQUESTED},
        logger=logger,
        metrics=metrics,
    )
