"""payment_retry: give failed payment requests another go, later; give up cleanly.

Trigger: SQS payment-processing-dlq (payment.requested that failed maxReceiveCount times in the
processing queue). Out: the same event re-sent to PAYMENT_PROCESSING_QUEUE_URL with
`attempt` + 1 and DelaySeconds = min(base · 2^(attempt-1), RETRY_MAX_DELAY_SECONDS, 900); after
RETRY_MAX_ATTEMPTS, the payment is marked FAILED and payment.failed is published.

Nothing is dropped: every record either re-enters the processing queue, settles the payment,
or fails (stays in the DLQ and is retried). The re-send is idempotent per (eventId, attempt),
so a crash after sending does not fork the payment into two copies.

Giving up is PENDING→FAILED (with `owed` = FAILED in the same write), then a void at the
gateway (an authorization whose answer was lost must not keep holding the backer's money; a
void that arrives before the authorization makes the gateway refuse it), then payment.failed
(its occurredAt is the stored failedAt, so a repeat is the same event), then `owed` is cleared.
If the void keeps failing, the record stays in the DLQ and the sweeper also finishes it.

A DLQ'd request whose payment is already DECLINED (its payment.declined may never have gone
out) or terminal with work still `owed` gets that work done here: its state's event re-sent,
and for FAILED/CANCELLED the void first.
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
    ENV_RETRY_BASE_DELAY_SECONDS,
    ENV_RETRY_MAX_ATTEMPTS,
    ENV_RETRY_MAX_DELAY_SECONDS,
    OWED_ATTRIBUTE,
    EventType,
    Metric,
    PaymentState,
    make_event,
    message_attributes,
    utc_now_iso,
)
from lambdas.shared.events import derived_event_id, publish
from lambdas.shared.idempotency import run_once
from lambdas.shared.owed import needs_void, settle
from lambdas.shared.payments import get_payment, transition_or_current
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.specs.payment_retry import SPEC

require_environment(SPEC.environment, function=SPEC.name)

SQS_MAX_DELAY_SECONDS = 900
DEFAULT_BASE_DELAY_SECONDS = 30
FAILURE_REASON = "gateway unavailable after retries"

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


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
        SPEC.name,
        _send,
        {"event": next_event, "delaySeconds": delay},
        key="[event.eventId, event.attempt]",
        context=context,
    )
    count(metrics, Metric.RETRY_ATTEMPTS)
    logger.info("payment re-sent for another attempt", extra={"attempt": attempt + 1, "delaySeconds": delay})


def _settle(payment: dict[str, Any]) -> None:
    """Do the payment's owed work (void, event, clear `owed`); raise so the record is retried if not done."""
    outcome = settle([payment], logger)
    if not outcome.complete:
        raise RuntimeError(
            f"payment {payment['paymentId']} ({payment['state']}) not settled yet: "
            f"{outcome.unfinished[payment['paymentId']]}"
        )


def _give_up_unknown(event: dict[str, Any]) -> None:
    """The table does not hold the payment: announce the failure so the ledger and the backer hear.

    The event is deterministic (eventId from the payment id, occurredAt from the request), so a
    redelivery of the same record publishes the same event and the ledger records it once.
    """
    payment_id = event["paymentId"]
    publish(
        make_event(
            EventType.PAYMENT_FAILED,
            payment_id=payment_id,
            funding_id=event["fundingId"],
            user_id=event.get("userId"),
            amount=event.get("amount"),
            occurred_at=event["occurredAt"],
            event_id=derived_event_id(EventType.PAYMENT_FAILED, payment_id),
            reason="payment not found",
        )
    )
    count(metrics, Metric.PAYMENTS_FAILED)
    logger.error("gave up on a payment the table does not hold", extra={"paymentId": payment_id})


def _give_up(event: dict[str, Any], payment: dict[str, Any]) -> None:
    failed, current = transition_or_current(
        payment["paymentId"],
        PaymentState.PENDING,
        PaymentState.FAILED,
        {"failedAt": utc_now_iso(), "failureReason": FAILURE_REASON},
    )
    if failed is None:
        state = current["state"] if current else "missing"
        raise RuntimeError(f"payment {payment['paymentId']} became {state} while giving up; retrying")
    count(metrics, Metric.PAYMENTS_FAILED)
    logger.warning("payment FAILED after the last retry", extra={"attempts": event.get("attempt", 1)})
    _settle(failed)


def _process(event: dict[str, Any], record: SQSRecord, context: Any) -> None:
    attempt = int(event.get("attempt", 1))
    payment = get_payment(event["paymentId"])
    state = payment["state"] if payment else None
    last_attempt = attempt >= env_int(ENV_RETRY_MAX_ATTEMPTS, minimum=1)
    if payment is None or state == PaymentState.PENDING:
        if not last_attempt:
            _retry(event, attempt, context)
        elif payment is None:
            _give_up_unknown(event)
        else:
            _give_up(event, payment)
    elif state == PaymentState.APPROVED:
        # Approved but its event never got out: never fail an approved payment; keep it moving.
        if last_attempt:
            logger.error("approved payment exhausted its retries; re-sending at the maximum delay")
        _retry(event, attempt, context)
    elif state == PaymentState.DECLINED or payment.get(OWED_ATTRIBUTE) or needs_void(payment):
        # The decision is stored but its follow-up may never have happened (a lost publish).
        logger.info("payment settled but its follow-up may be owed; completing it", extra={"state": state})
        _settle(payment)
    else:
        logger.info("payment already settled; retry not needed", extra={"state": state})


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
