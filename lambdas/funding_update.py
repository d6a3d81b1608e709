"""funding_update: capture approved payments and keep each campaign's total, in aggregate.

Trigger: SQS funding-update (payment.approved; batches of up to 99 with a 1 s window). Out:
payment.captured (one per capture; the ledger checks totals against them), funding.goal_reached
(once per campaign), payment.cancel_requested (an approved payment met a closed or deleted
campaign, or one whose deadline has passed).

A batch is grouped by campaign. For each campaign, one DynamoDB TransactWriteItems (1 campaign
+ up to 99 payments, DynamoDB's 100-item limit; chunked beyond) moves its payments
APPROVED→CAPTURED (condition: still APPROVED; `owed` = CAPTURED in the same write) and adds
their sum to `fundingAmount` (condition: campaign OPEN, now ≤ endDate, goalAmount unchanged, and
the batch still cannot reach the goal — or, for the batch that crosses it, fundingAmount exactly
as read). The campaign item is written once per 99 payments instead of once per payment, which
is what lets one hot campaign take tens of thousands of payments per second.

Invariants (DESIGN §3):
- captured at most once: the payment condition. A duplicate delivery, or a retry after a crash
  anywhere in this function, finds the payment CAPTURED and only re-publishes its event if it
  is still owed.
- captured only while now ≤ endDate: the campaign condition compares endDate with the capture's
  own timestamp in the stored format; an approved payment that meets a passed deadline is
  cancelled (cancel_requested → transaction_check voids it) instead.
- fundingAmount == sum(CAPTURED): both change in the same transaction; the optimistic condition
  on fundingAmount makes a racing batch fail and recompute from a fresh read, never add twice.
- SUCCEEDED exactly once: the payment whose capture first makes fundingAmount ≥ goalAmount sets
  state=SUCCEEDED, goalReachedAt and goalPaymentId in that same transaction (condition: OPEN);
  payments after it in the batch are not captured but cancelled. funding.goal_reached has a
  deterministic eventId and `goalPublishedAt` records that it went out; campaign_closer
  re-publishes it for a campaign where that never happened.
- no lost events: the batch's events go out with PublishBatch at the end; each payment.captured
  that went out clears its payment's `owed` (one transaction for the batch); an unsent one fails
  its record, and stays owed for the sweeper should the record end in the DLQ.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared import contract as c
from lambdas.shared.batch import parse_record
from lambdas.shared.campaigns import (
    amount_of,
    deadline_passed,
    fundings_table,
    iso_utc,
    open_until_condition,
)
from lambdas.shared.config import require_environment
from lambdas.shared.contract import CampaignState, Metric, PaymentState
from lambdas.shared.events import goal_reached_event, payment_event, publish, publish_all, state_event
from lambdas.shared.payments import clear_owed, payments_table, set_fields_once
from lambdas.shared.telemetry import amount, correlated, count, function_logger, function_metrics
from lambdas.specs.funding_update import SPEC

require_environment(SPEC.environment, function=SPEC.name)

MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's TransactWriteItems limit: one campaign update plus up to 99 payments."""
MAX_CONTENTION_RETRIES = 10

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


class ContentionError(RuntimeError):
    """The campaign kept changing under us; the records fail and SQS redelivers them."""


class PublishError(RuntimeError):
    """An event owed after a committed write did not go out; its record is retried."""


@dataclass
class _Group:
    """The records of one campaign in this batch, deduplicated by payment."""

    funding_id: str
    message_ids: dict[str, list[str]] = field(default_factory=dict)  # paymentId -> messageIds


@dataclass
class _Outgoing:
    """An event this batch owes, with the payment it clears `owed` of once sent (if any)."""

    event: dict[str, Any]
    funding_id: str
    payment_id: str
    payment: dict[str, Any] | None = None


_outbox: list[_Outgoing] = []


def _capture_transaction(
    campaign: dict[str, Any],
    payments: list[dict[str, Any]],
    crossing: dict[str, Any] | None,
    moment: datetime,
) -> None:
    """Capture `payments` and add their sum to the campaign, atomically and conditionally.

    A batch that cannot reach the goal is conditioned on `fundingAmount < goal - sum`, which
    holds whatever concurrent batches added meanwhile (additions commute), so racing batches
    far from the goal do not cancel each other. Only the batch that crosses the goal needs the
    exact amount it read (`fundingAmount = :seen`), to know which payment crossed. The capture
    time is also the instant compared with endDate, so no payment is captured after it.
    """
    funding_id = campaign["fundingId"]
    now = iso_utc(moment)
    seen = amount_of(campaign, "fundingAmount")
    goal = amount_of(campaign, "goalAmount")
    batch_sum = sum(p["amount"] for p in payments)
    values: dict[str, Any] = {":open": str(CampaignState.OPEN), ":zero": 0, ":sum": batch_sum, ":now": now}
    update = "SET fundingAmount = if_not_exists(fundingAmount, :zero) + :sum, updatedAt = :now"
    conditions = ["#state = :open"]
    open_until = open_until_condition(campaign, moment)
    if open_until is not None:
        conditions.append(open_until[0])
        values.update(open_until[1])
    if crossing is not None:
        update += ", #state = :succeeded, goalReachedAt = :now, goalPaymentId = :crossing"
        values.update(
            {":succeeded": str(CampaignState.SUCCEEDED), ":crossing": crossing["paymentId"], ":seen": seen}
        )
        conditions.append(
            "(fundingAmount = :seen" + (" OR attribute_not_exists(fundingAmount))" if seen == 0 else ")")
        )
    elif goal > 0:
        values[":threshold"] = goal - batch_sum
        conditions.append("(fundingAmount < :threshold OR attribute_not_exists(fundingAmount))")
    if campaign.get("goalAmount") is None:
        conditions.append("attribute_not_exists(goalAmount)")
    else:
        values[":goal"] = campaign["goalAmount"]
        conditions.append("goalAmount = :goal")
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": fundings_table(),
                "Key": aws.to_attributes({"fundingId": funding_id}),
                "UpdateExpression": update,
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": aws.to_attributes(values),
            }
        }
    ]
    for payment in payments:
        items.append(
            {
                "Update": {
                    "TableName": payments_table(),
                    "Key": aws.to_attributes({"paymentId": payment["paymentId"]}),
                    "UpdateExpression": (
                        "SET #state = :captured, capturedAt = :now, updatedAt = :now,"
                        f" {c.OWED_ATTRIBUTE} = :captured, {c.OWED_SINCE_ATTRIBUTE} = :now"
                    ),
                    "ConditionExpression": "#state = :approved AND fundingId = :fid",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": aws.to_attributes(
                        {
                            ":captured": str(PaymentState.CAPTURED),
                            ":approved": str(PaymentState.APPROVED),
                            ":fid": funding_id,
                            ":now": now,
                        }
                    ),
                }
            }
        )
    aws.client("dynamodb").transact_write_items(TransactItems=items)


def _publish_goal_reached(campaign: dict[str, Any]) -> None:
    """Publish funding.goal_reached unless a previous attempt already recorded doing so."""
    if campaign.get("goalPublishedAt"):
        return
    funding_id = campaign["fundingId"]
    publish(goal_reached_event(campaign))
    aws.update_item(
        fundings_table(),
        {"fundingId": funding_id},
        "SET goalPublishedAt = :now",
        {":now": c.utc_now_iso()},
        condition="attribute_not_exists(goalPublishedAt)",
    )
    count(metrics, Metric.GOALS_REACHED)
    logger.info(
        "campaign reached its goal", extra={"fundingId": funding_id, "goalAmount": campaign.get("goalAmount")}
    )


def _request_cancel(payment: dict[str, Any], reason: str) -> None:
    """An approved payment can no longer be captured: record the request once, then publish it.

    The reason is stored with the request, so a re-publication is the identical event.
    """
    updated = set_fields_once(
        payment["paymentId"],
        {"cancelRequestedAt": c.utc_now_iso(), "cancelRequestReason": reason},
        state=PaymentState.APPROVED,
    )
    if updated is None:
        return  # no longer APPROVED: transaction_check already cancelled it
    event = payment_event(
        c.EventType.PAYMENT_CANCEL_REQUESTED,
        updated,
        occurred_at=updated["cancelRequestedAt"],
        reason=updated.get("cancelRequestReason"),
    )
    _outbox.append(_Outgoing(event, payment["fundingId"], payment["paymentId"]))
    logger.info(
        "approved payment cannot be captured; cancel requested",
        extra={"paymentId": payment["paymentId"], "reason": reason},
    )


_CLOSED_REASONS: dict[str, str] = {
    CampaignState.SUCCEEDED: "the campaign had already reached its goal",
    CampaignState.FAILED: "the campaign had already ended",
    CampaignState.DELETED: "the campaign was cancelled by its creator",
}


def _uncapturable_reason(campaign: dict[str, Any] | None, moment: datetime) -> str | None:
    """Why approved payments of this campaign can no longer be captured (None: they can).

    The reason rides on payment.cancel_requested and payment.cancelled, into the backer's email.
    """
    if campaign is None:
        return "the campaign no longer exists"
    state = campaign.get("state")
    if state != CampaignState.OPEN:
        return _CLOSED_REASONS.get(str(state), f"the campaign is {state}")
    if deadline_passed(campaign, moment):
        return "the campaign's deadline had passed"
    return None


def _settle_campaign(group: _Group) -> dict[str, Exception]:
    """Capture what can be captured for one campaign; returns per-payment failures."""
    failures: dict[str, Exception] = {}
    remaining = list(group.message_ids)
    contention = 0
    while remaining:
        # The campaign and its payments in one strongly consistent BatchGetItem.
        read = aws.batch_get_many(
            {
                fundings_table(): (c.FUNDINGS_TABLE.partition_key, [group.funding_id]),
                payments_table(): (c.PAYMENTS_TABLE.partition_key, remaining),
            }
        )
        campaign = read[fundings_table()].get(group.funding_id)
        found = read[payments_table()]
        approved: list[dict[str, Any]] = []
        for payment_id in remaining:
            payment = found.get(payment_id)
            if payment is None or payment.get("fundingId") != group.funding_id:
                failures[payment_id] = LookupError(
                    f"payment {payment_id} not found for campaign {group.funding_id}"
                )
            elif payment["state"] == PaymentState.APPROVED:
                approved.append(payment)
            elif payment["state"] == PaymentState.CAPTURED:
                # Duplicate delivery or a retry after a crash: never capture again, only make
                # sure the events the first attempt owed went out.
                if payment.get(c.OWED_ATTRIBUTE) == PaymentState.CAPTURED:
                    _outbox.append(_Outgoing(state_event(payment), group.funding_id, payment_id, payment))
                if campaign and campaign.get("goalPaymentId") == payment_id:
                    _publish_goal_reached(campaign)
            elif payment["state"] == PaymentState.PENDING:
                failures[payment_id] = RuntimeError(f"payment {payment_id} is still PENDING; retry later")
            else:
                logger.info(
                    "payment already settled", extra={"paymentId": payment_id, "state": payment["state"]}
                )
        remaining = [p["paymentId"] for p in approved]
        if not approved:
            break
        approved.sort(key=lambda p: (str(p.get("createdAt", "")), p["paymentId"]))

        moment = datetime.now(UTC)
        reason = _uncapturable_reason(campaign, moment)
        if reason is not None or campaign is None:
            for payment in approved:
                _request_cancel(payment, reason or "the campaign no longer exists")
            break

        goal = amount_of(campaign, "goalAmount")
        total = amount_of(campaign, "fundingAmount")
        chunk: list[dict[str, Any]] = []
        crossing: dict[str, Any] | None = None
        for payment in approved[: MAX_TRANSACTION_ITEMS - 1]:
            chunk.append(payment)
            total += payment["amount"]
            if goal > 0 and total >= goal:
                crossing = payment
                break

        try:
            _capture_transaction(campaign, chunk, crossing, moment)
        except ClientError as exc:
            if aws.error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            contention += 1
            logger.info(
                "capture transaction cancelled; re-reading",
                extra={"attempt": contention, "reasons": aws.cancellation_codes(exc)},
            )
            if contention > MAX_CONTENTION_RETRIES:
                raise ContentionError(
                    f"campaign {group.funding_id}: gave up after {contention} cancelled transactions"
                ) from exc
            time.sleep(random.uniform(0, 0.005 * 2 ** min(contention, 6)))
            continue

        now = iso_utc(moment)
        captured_sum = 0
        for payment in chunk:
            payment.update(
                state=str(PaymentState.CAPTURED),
                capturedAt=now,
                updatedAt=now,
                **{c.OWED_ATTRIBUTE: str(PaymentState.CAPTURED), c.OWED_SINCE_ATTRIBUTE: now},
            )
            captured_sum += payment["amount"]
            _outbox.append(_Outgoing(state_event(payment), group.funding_id, payment["paymentId"], payment))
        count(metrics, Metric.PAYMENTS_CAPTURED, len(chunk))
        amount(metrics, Metric.AMOUNT_CAPTURED, captured_sum)
        logger.info(
            "captured payments",
            extra={"fundingId": group.funding_id, "payments": len(chunk), "amount": captured_sum},
        )
        if crossing is not None:
            campaign.update(
                state=str(CampaignState.SUCCEEDED),
                goalReachedAt=now,
                goalPaymentId=crossing["paymentId"],
                fundingAmount=total,
            )
            try:
                _publish_goal_reached(campaign)
            except Exception as exc:
                # The capture stands; the crossing record's retry (or the closer) re-sends it.
                logger.exception("funding.goal_reached not published yet")
                failures[crossing["paymentId"]] = PublishError(f"funding.goal_reached not sent: {exc}")
        done = {p["paymentId"] for p in chunk}
        remaining = [pid for pid in remaining if pid not in done]
    return failures


def _send_outbox(groups: dict[str, _Group], failed: dict[str, Exception]) -> None:
    """Publish what the batch owes (PublishBatch); fail unsent events' records; clear sent `owed`."""
    outgoing = list(_outbox)
    _outbox.clear()
    if not outgoing:
        return
    try:
        unsent = set(publish_all([o.event for o in outgoing]))
    except Exception:  # nothing is known to have gone out: every record owed an event is retried
        logger.exception("publishing the batch's events failed")
        unsent = set(range(len(outgoing)))
    for index in sorted(unsent):
        item = outgoing[index]
        logger.error(
            "event not published; failing its record",
            extra={"paymentId": item.payment_id, "eventType": item.event["type"]},
        )
        for message_id in groups[item.funding_id].message_ids.get(item.payment_id, []):
            failed.setdefault(message_id, PublishError(f"{item.event['type']} of {item.payment_id} not sent"))
    sent = [o.payment for i, o in enumerate(outgoing) if i not in unsent and o.payment is not None]
    for payment_id in clear_owed(sent):
        logger.warning(
            "event sent but `owed` not cleared; the sweeper will re-send it", extra={"paymentId": payment_id}
        )


def _settle_batch(records: list[SQSRecord]) -> dict[str, Exception]:
    """Aggregate the whole batch by campaign; returns {messageId: why it failed}."""
    failed: dict[str, Exception] = {}
    groups: dict[str, _Group] = {}
    for record in records:
        try:
            event = parse_record(record, {c.EventType.PAYMENT_APPROVED}, logger, metrics)
        except c.EnvelopeError as exc:
            failed[record.message_id] = exc
            continue
        group = groups.setdefault(event["fundingId"], _Group(event["fundingId"]))
        group.message_ids.setdefault(event["paymentId"], []).append(record.message_id)
    _outbox.clear()
    for group in groups.values():
        with correlated(logger, {"fundingId": group.funding_id}):
            try:
                per_payment = _settle_campaign(group)
            except Exception as error:
                logger.exception("campaign batch failed; its records will be redelivered")
                per_payment = {pid: error for pid in group.message_ids}
        for payment_id, why in per_payment.items():
            if not isinstance(why, ContentionError):
                logger.warning("record failed", extra={"paymentId": payment_id, "reason": str(why)})
            for message_id in group.message_ids[payment_id]:
                failed[message_id] = why
    _send_outbox(groups, failed)
    return failed


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of payment.approved → partial batch response (failed records are redelivered)."""
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    failed = _settle_batch(records)

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise failed[record.message_id]

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event, record_handler, processor, context))
