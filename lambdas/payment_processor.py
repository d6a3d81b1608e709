"""payment_processor: authorize each requested payment at the gateway.

Trigger: SQS payment-processing (payment.requested from the payments topic; also the re-sends
of payment_retry and the reconciler). Out: payment.approved / payment.declined.

Per payment, driven by its stored state so any redelivery is safe:
- PENDING: authorize (idempotent at the gateway by paymentId, so a retry after a crash gets the
  same answer and never a second authorization), then PENDING→APPROVED or PENDING→DECLINED
  (conditional), then publish. A transient gateway error fails the record: SQS retries it and,
  after maxReceiveCount, the DLQ hands it to payment_retry.
- APPROVED / DECLINED: a previous attempt stopped between the write and the publish: publish
  again (same deterministic eventId, so consumers see one event).
- FAILED after we got an approval (payment_retry gave up concurrently): void the authorization.
- anything else: already settled, nothing to do.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared.batch import consume, receive_count
from lambdas.shared.config import require_environment
from lambdas.shared.contract import (
    ENV_PAYMENTS_TOPIC_ARN,
    ENV_PG_GATEWAY_FUNCTION,
    PAYMENTS_TABLE,
    EventType,
    Metric,
    PaymentState,
)
from lambdas.shared.events import payment_event, publish_all
from lambdas.shared.gateway import gateway_client
from lambdas.shared.payments import get_payment, transition
from lambdas.shared.telemetry import count, function_logger, function_metrics

FUNCTION = "payment_processor"
ENVIRONMENT: tuple[str, ...] = (PAYMENTS_TABLE.env_var, ENV_PAYMENTS_TOPIC_ARN, ENV_PG_GATEWAY_FUNCTION)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


class PaymentNotFoundError(LookupError):
    """The event names a payment the table does not hold (yet): retry, then the DLQ path decides."""


_outbox: list[tuple[str, dict[str, Any]]] = []
"""(SQS message id, event) owed by this invocation: published together at the end of the batch."""
_current_message: list[str] = [""]


def _publish_outcome(payment: dict[str, Any]) -> None:
    """Queue the event that corresponds to the payment's stored decision (sent at batch end)."""
    if payment["state"] == PaymentState.APPROVED:
        event = payment_event(EventType.PAYMENT_APPROVED, payment, occurred_at=payment["approvedAt"])
    elif payment["state"] == PaymentState.DECLINED:
        event = payment_event(
            EventType.PAYMENT_DECLINED,
            payment,
            occurred_at=payment["declinedAt"],
            reason=payment.get("declineReason"),
        )
    else:
        return
    _outbox.append((_current_message[0], event))


def _authorize(payment: dict[str, Any]) -> None:
    payment_id = payment["paymentId"]
    gateway = gateway_client()
    result = gateway.authorize(
        payment_id,
        payment["amount"],
        fundingId=payment["fundingId"],
        paymentMethod=payment.get("paymentMethod"),
    )
    if result.approved:
        updated = transition(
            payment_id,
            PaymentState.PENDING,
            PaymentState.APPROVED,
            {"approvedAt": result.processed_at, "authorizationRef": result.reference},
        )
        metric = Metric.PAYMENTS_APPROVED
    else:
        updated = transition(
            payment_id,
            PaymentState.PENDING,
            PaymentState.DECLINED,
            {"declinedAt": result.processed_at, "declineReason": result.reason or "declined"},
        )
        metric = Metric.PAYMENTS_DECLINED
    if updated is None:
        # Someone moved it first: a duplicate delivery (same gateway answer), or payment_retry
        # gave up and marked it FAILED, in which case our approval must not stay held.
        current = get_payment(payment_id) or payment
        logger.info("payment moved concurrently", extra={"state": current["state"]})
        if current["state"] == PaymentState.FAILED and result.approved:
            gateway.void(payment_id, payment["amount"])
            logger.warning("voided an authorization that arrived after the payment was FAILED")
            return
        _publish_outcome(current)
        return
    count(metrics, metric)
    logger.info(
        "payment authorized" if result.approved else "payment declined", extra={"outcome": result.outcome}
    )
    _publish_outcome(updated)


def _process(event: dict[str, Any], record: SQSRecord) -> None:
    _current_message[0] = record.message_id
    payment = get_payment(event["paymentId"])
    if payment is None:
        raise PaymentNotFoundError(f"payment {event['paymentId']} not found")
    state = payment["state"]
    if state == PaymentState.PENDING:
        if receive_count(record) == 1 and int(event.get("attempt", 1)) == 1 and not event.get("reconciled"):
            count(metrics, Metric.PAYMENTS_REQUESTED)
        _authorize(payment)
    elif state in (PaymentState.APPROVED, PaymentState.DECLINED):
        logger.info("decision already stored; re-publishing it", extra={"state": state})
        _publish_outcome(payment)
    else:
        logger.info("payment already settled; nothing to do", extra={"state": state})


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of payment.requested → partial batch response.

    Decisions are stored per record; their events go out with one PublishBatch per ten at the
    end. A record whose event could not be published is failed: its redelivery finds the stored
    decision and publishes the same event again.
    """
    _outbox.clear()
    response = consume(
        event, context, _process, accepted={EventType.PAYMENT_REQUESTED}, logger=logger, metrics=metrics
    )
    owed = list(_outbox)
    _outbox.clear()
    if owed:
        already = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        for index in publish_all([event for _, event in owed]):
            message_id = owed[index][0]
            logger.error("event not published; failing its record", extra={"messageId": message_id})
            if message_id not in already:
                response["batchItemFailures"].append({"itemIdentifier": message_id})
                already.add(message_id)
    return response
