"""payment_processor: authorize each requested payment at the gateway.

Trigger: SQS payment-processing (payment.requested from the payments topic; also the re-sends
of payment_retry and the reconciler). Out: payment.approved / payment.declined.

The batch's payments are read with one BatchGetItem (strongly consistent), then per payment,
driven by its stored state so any redelivery is safe:
- PENDING: authorize (idempotent at the gateway by paymentId, so a retry after a crash gets the
  same answer and never a second authorization), then PENDING→APPROVED or PENDING→DECLINED
  (conditional; DECLINED sets `owed` in the same write), then publish. A transient gateway
  error fails the record: SQS retries it and, after maxReceiveCount, the DLQ hands it to
  payment_retry.
- APPROVED / DECLINED: a previous attempt stopped between the write and the publish: publish
  again (same deterministic eventId, so consumers see one event).
- FAILED / CANCELLED after we got an approval (payment_retry gave up concurrently): void the
  authorization. The gateway serializes authorize and void per payment, so whichever of the two
  arrives first, no authorization stays held (an authorize after the void is refused).
- anything else: already settled, nothing to do.

Events go out together at the end of the batch (PublishBatch, ten per call); a payment.declined
that went out clears the payment's `owed` (one call for the batch). An unsent event fails its
record; if that keeps failing, `owed` (DECLINED) or the sweeper's APPROVED pass re-sends it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared import aws
from lambdas.shared.batch import consume, receive_count
from lambdas.shared.config import require_environment
from lambdas.shared.contract import (
    OWED_ATTRIBUTE,
    PAYMENTS_TABLE,
    EventType,
    Metric,
    PaymentState,
)
from lambdas.shared.events import publish_all, state_event
from lambdas.shared.gateway import gateway_client
from lambdas.shared.payments import clear_owed, payments_table, record_void, transition_or_current
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.specs.payment_processor import SPEC

require_environment(SPEC.environment, function=SPEC.name)

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


class PaymentNotFoundError(LookupError):
    """The event names a payment the table does not hold (yet): retry, then the DLQ path decides."""


_payments: dict[str, dict[str, Any]] = {}
"""This batch's payments as last seen (read once per batch, updated after each write)."""
_outbox: dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]] = {}
"""eventId -> (event, payment, SQS message ids owed it): published together at the end of the batch."""
_current_message: list[str] = [""]


def _queue_outcome(payment: dict[str, Any]) -> None:
    """Queue the event of the payment's stored decision (sent at batch end, once per event)."""
    if payment["state"] not in (PaymentState.APPROVED, PaymentState.DECLINED):
        return
    event = state_event(payment)
    _, _, messages = _outbox.setdefault(event["eventId"], (event, payment, []))
    messages.append(_current_message[0])


def _void_late_authorization(payment: dict[str, Any], current: dict[str, Any]) -> None:
    """Our approval arrived after the payment was given up on: release it (idempotent)."""
    result = gateway_client().void(payment["paymentId"], payment["amount"], fundingId=payment["fundingId"])
    _payments[payment["paymentId"]] = (
        record_void(payment["paymentId"], result.processed_at, result.reference) or current
    )
    logger.warning(
        "voided an authorization that arrived after the payment was given up",
        extra={"state": current["state"]},
    )


def _authorize(payment: dict[str, Any]) -> None:
    payment_id = payment["paymentId"]
    result = gateway_client().authorize(
        payment_id,
        payment["amount"],
        fundingId=payment["fundingId"],
        paymentMethod=payment.get("paymentMethod"),
    )
    if result.approved:
        updated, current = transition_or_current(
            payment_id,
            PaymentState.PENDING,
            PaymentState.APPROVED,
            {"approvedAt": result.processed_at, "authorizationRef": result.reference},
        )
        metric = Metric.PAYMENTS_APPROVED
    else:
        updated, current = transition_or_current(
            payment_id,
            PaymentState.PENDING,
            PaymentState.DECLINED,
            {"declinedAt": result.processed_at, "declineReason": result.reason or "declined"},
        )
        metric = Metric.PAYMENTS_DECLINED
    if updated is None:
        # Someone moved it first: a duplicate delivery (same gateway answer), or payment_retry
        # gave up and marked it FAILED, in which case our approval must not stay held.
        current = current or payment
        _payments[payment_id] = current
        logger.info("payment moved concurrently", extra={"state": current["state"]})
        if current["state"] in (PaymentState.FAILED, PaymentState.CANCELLED) and result.approved:
            _void_late_authorization(payment, current)
            return
        _queue_outcome(current)
        return
    _payments[payment_id] = updated
    count(metrics, metric)
    logger.info(
        "payment authorized" if result.approved else "payment declined", extra={"outcome": result.outcome}
    )
    _queue_outcome(updated)


def _process(event: dict[str, Any], record: SQSRecord) -> None:
    _current_message[0] = record.message_id
    payment = _payments.get(event["paymentId"])
    if payment is None:
        raise PaymentNotFoundError(f"payment {event['paymentId']} not found")
    state = payment["state"]
    if state == PaymentState.PENDING:
        if receive_count(record) == 1 and int(event.get("attempt", 1)) == 1 and not event.get("reconciled"):
            count(metrics, Metric.PAYMENTS_REQUESTED)
        _authorize(payment)
    elif state in (PaymentState.APPROVED, PaymentState.DECLINED):
        logger.info("decision already stored; re-publishing it", extra={"state": state})
        _queue_outcome(payment)
    else:
        logger.info("payment already settled; nothing to do", extra={"state": state})


def _payment_ids(records: list[dict[str, Any]]) -> list[str]:
    """The payment ids the batch's bodies name (poison bodies are left to `consume` to fail)."""
    ids: list[str] = []
    for raw in records:
        try:
            payment_id = json.loads(raw.get("body") or "").get("paymentId")
        except (ValueError, AttributeError):
            continue
        if isinstance(payment_id, str) and payment_id and payment_id not in ids:
            ids.append(payment_id)
    return ids


def _publish_outbox(response: dict[str, Any]) -> None:
    """Send the batch's events; fail the records of unsent ones; clear `owed` of sent declines."""
    owed = list(_outbox.values())
    if not owed:
        return
    already = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    try:
        unsent = set(publish_all([event for event, _, _ in owed]))
    except Exception:  # nothing is known to have gone out: every record owed an event is retried
        logger.exception("publishing the batch's events failed")
        unsent = set(range(len(owed)))
    for index in sorted(unsent):
        for message_id in owed[index][2]:
            logger.error("event not published; failing its record", extra={"messageId": message_id})
            if message_id not in already:
                response["batchItemFailures"].append({"itemIdentifier": message_id})
                already.add(message_id)
    sent = [
        payment for i, (_, payment, _) in enumerate(owed) if i not in unsent and payment.get(OWED_ATTRIBUTE)
    ]
    for payment_id in clear_owed(sent):
        logger.warning(
            "payment.declined sent but `owed` not cleared; the sweeper will", extra={"paymentId": payment_id}
        )


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of payment.requested → partial batch response.

    Decisions are stored per record; their events go out with one PublishBatch per ten at the
    end. A record whose event could not be published is failed: its redelivery finds the stored
    decision and publishes the same event again.
    """
    _outbox.clear()
    _payments.clear()
    ids = _payment_ids(event.get("Records", []))
    if ids:
        _payments.update(aws.batch_get(payments_table(), PAYMENTS_TABLE.partition_key, ids))
    try:
        response = consume(
            event, context, _process, accepted={EventType.PAYMENT_REQUESTED}, logger=logger, metrics=metrics
        )
        _publish_outbox(response)
    finally:
        _outbox.clear()
        _payments.clear()
    return response
