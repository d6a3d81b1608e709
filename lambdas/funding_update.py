"""funding_update: capture approved payments and keep each campaign's total, in aggregate.

Trigger: SQS funding-update (payment.approved). Out: payment.captured (one per capture; the
ledger checks totals against them), funding.goal_reached (once per campaign),
payment.cancel_requested (an approved payment met a closed or deleted campaign).

A batch is grouped by campaign. For each campaign, one DynamoDB TransactWriteItems (≤ 100
items; chunked beyond) moves its payments APPROVED→CAPTURED (condition: still APPROVED) and adds
their sum to `fundingAmount` (condition: campaign OPEN, goalAmount unchanged, and the batch still
cannot reach the goal — or, for the batch that crosses it, fundingAmount exactly as read).
The campaign item is written once per batch instead of once per payment, which is what lets one
hot campaign take thousands of payments per second.

Invariants (DESIGN §3):
- captured at most once: the payment condition. A duplicate delivery, or a retry after a crash
  anywhere in this function, finds the payment CAPTURED and only re-publishes its event.
- fundingAmount == sum(CAPTURED): both change in the same transaction; the optimistic condition
  on fundingAmount makes a racing batch fail and recompute from a fresh read, never add twice.
- SUCCEEDED exactly once: the payment whose capture first makes fundingAmount ≥ goalAmount sets
  state=SUCCEEDED, goalReachedAt and goalPaymentId in that same transaction (condition: OPEN);
  payments after it in the batch are not captured but cancelled. funding.goal_reached has a
  deterministic eventId and `goalPublishedAt` records that it went out, so a retry publishes it
  only if the first attempt crashed before doing so.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared import contract as c
from lambdas.shared.batch import parse_record
from lambdas.shared.campaigns import amount_of, fundings_table, get_campaign
from lambdas.shared.config import require_environment
from lambdas.shared.contract import CampaignState, Metric, PaymentState
from lambdas.shared.events import derived_event_id, payment_event, publish, publish_all
from lambdas.shared.payments import payments_table, set_once
from lambdas.shared.telemetry import amount, correlated, count, function_logger, function_metrics

FUNCTION = "funding_update"
ENVIRONMENT: tuple[str, ...] = (
    c.FUNDINGS_TABLE.env_var,
    c.PAYMENTS_TABLE.env_var,
    c.ENV_PAYMENTS_TOPIC_ARN,
    c.ENV_FUNDING_TARGET_TOPIC_ARN,
)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's TransactWriteItems limit: one campaign update plus up to 99 payments."""
MAX_CONTENTION_RETRIES = 10

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


class ContentionError(RuntimeError):
    """The campaign kept changing under us; the records fail and SQS redelivers them."""


@dataclass
class _Group:
    """The records of one campaign in this batch, deduplicated by payment."""

    funding_id: str
    message_ids: dict[str, list[str]] = field(default_factory=dict)  # paymentId -> messageIds


def _capture_transaction(
    campaign: dict[str, Any], payments: list[dict[str, Any]], crossing: dict[str, Any] | None, now: str
) -> None:
    """Capture `payments` and add their sum to the campaign, atomically and conditionally.

    A batch that cannot reach the goal is conditioned on `fundingAmount < goal - sum`, which
    holds whatever concurrent batches added meanwhile (additions commute), so racing batches
    far from the goal do not cancel each other. Only the batch that crosses the goal needs the
    exact amount it read (`fundingAmount = :seen`), to know which payment crossed.
    """
    funding_id = campaign["fundingId"]
    seen = amount_of(campaign, "fundingAmount")
    goal = amount_of(campaign, "goalAmount")
    batch_sum = sum(p["amount"] for p in payments)
    values: dict[str, Any] = {":open": str(CampaignState.OPEN), ":zero": 0, ":sum": batch_sum, ":now": now}
    update = "SET fundingAmount = if_not_exists(fundingAmount, :zero) + :sum, updatedAt = :now"
    conditions = ["#state = :open"]
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
                    "UpdateExpression": "SET #state = :captured, capturedAt = :now, updatedAt = :now",
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


class PublishError(RuntimeError):
    """Events owed after a committed capture did not go out; the records are retried."""


def _publish_captured(payment: dict[str, Any]) -> None:
    publish(payment_event(c.EventType.PAYMENT_CAPTURED, payment, occurred_at=payment["capturedAt"]))


def _publish_goal_reached(campaign: dict[str, Any]) -> None:
    """Publish funding.goal_reached unless a previous attempt already recorded doing so."""
    if campaign.get("goalPublishedAt"):
        return
    funding_id = campaign["fundingId"]
    publish(
        c.make_event(
            c.EventType.FUNDING_GOAL_REACHED,
            payment_id=campaign["goalPaymentId"],
            funding_id=funding_id,
            user_id=campaign.get("ownerId"),
            amount=amount_of(campaign, "fundingAmount") or None,
            occurred_at=campaign["goalReachedAt"],
            event_id=derived_event_id(c.EventType.FUNDING_GOAL_REACHED, funding_id),
            goalAmount=campaign.get("goalAmount"),
        )
    )
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


def _request_cancel(payment: dict[str, Any], campaign_state: str) -> None:
    """An approved payment met a closed campaign: record the request once, then publish it."""
    updated = set_once(
        payment["paymentId"], "cancelRequestedAt", c.utc_now_iso(), state=PaymentState.APPROVED
    )
    if updated is None:
        return  # no longer APPROVED: transaction_check already cancelled it
    publish(
        payment_event(
            c.EventType.PAYMENT_CANCEL_REQUESTED,
            updated,
            occurred_at=updated["cancelRequestedAt"],
            reason=f"campaign {campaign_state}",
        )
    )
    logger.info("payment met a closed campaign; cancel requested", extra={"paymentId": payment["paymentId"]})


def _settle_campaign(group: _Group) -> dict[str, Exception]:
    """Capture what can be captured for one campaign; returns per-payment failures."""
    failures: dict[str, Exception] = {}
    remaining = list(group.message_ids)
    contention = 0
    while remaining:
        campaign = get_campaign(group.funding_id)
        found = aws.batch_get(payments_table(), "paymentId", remaining)
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
                _publish_captured(payment)
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

        state = campaign.get("state") if campaign else "missing"
        if state != CampaignState.OPEN or campaign is None:
            for payment in approved:
                _request_cancel(payment, str(state))
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

        now = c.utc_now_iso()
        try:
            _capture_transaction(campaign, chunk, crossing, now)
        except ClientError as exc:
            if aws.error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            contention += 1
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            logger.info(
                "capture transaction cancelled; re-reading", extra={"attempt": contention, "reasons": reasons}
            )
            if contention > MAX_CONTENTION_RETRIES:
                raise ContentionError(
                    f"campaign {group.funding_id}: gave up after {contention} cancelled transactions"
                ) from exc
            time.sleep(random.uniform(0, 0.005 * 2 ** min(contention, 6)))
            continue

        captured_sum = 0
        for payment in chunk:
            payment.update(state=str(PaymentState.CAPTURED), capturedAt=now, updatedAt=now)
            captured_sum += payment["amount"]
        # One PublishBatch per ten captures. If any is not sent, the group's records fail: their
        # redelivery finds the payments CAPTURED and re-publishes the same events (above).
        unsent = publish_all(
            [payment_event(c.EventType.PAYMENT_CAPTURED, p, occurred_at=p["capturedAt"]) for p in chunk]
        )
        if unsent:
            raise PublishError(
                f"{len(unsent)} payment.captured events of campaign {group.funding_id} not sent"
            )
        count(metrics, Metric.PAYMENTS_CAPTURED, len(chunk))
        amount(metrics, Metric.AMOUNT_CAPTURED, captured_sum)
        logger.info(
            "captured payments",
            extra={
                "fundingId": group.funding_id,
                "payments": len(chunk),
                "amount": captured_sum,
            },
        )
        if crossing is not None:
            campaign.update(
                state=str(CampaignState.SUCCEEDED),
                goalReachedAt=now,
                goalPaymentId=crossing["paymentId"],
                fundingAmount=total,
            )
            _publish_goal_reached(campaign)
        done = {p["paymentId"] for p in chunk}
        remaining = [pid for pid in remaining if pid not in done]
    return failures


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
    for group in groups.values():
        with correlated(logger, {"fundingId": group.funding_id}):
            try:
                per_payment = _settle_campaign(group)
            except Exception as exc:
                logger.exception("campaign batch failed; its records will be redelivered")
                per_payment = {pid: exc for pid in group.message_ids}
        for payment_id, exc in per_payment.items():
            if not isinstance(exc, ContentionError):
                logger.warning("record failed", extra={"paymentId": payment_id, "reason": str(exc)})
            for message_id in group.message_ids[payment_id]:
                failed[message_id] = exc
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
    return process_partial_response(event, record_handler, processor, context)
