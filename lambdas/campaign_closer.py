"""campaign_closer (scheduled): close campaigns whose deadline has passed; refund failed ones.

Trigger: EventBridge schedule (the event's content is not used). Out: funding.succeeded /
funding.failed, payment.refunded.

1. OPEN campaigns with endDate < now (byStateEndDate index): SUCCEEDED when fundingAmount ≥
   goalAmount, else FAILED. The transition is conditional on the campaign still being OPEN with
   the fundingAmount we read, so a capture racing the deadline is either counted in the
   decision or refused by funding_update (campaign no longer OPEN → its payment is voided).
2. FAILED campaigns whose refunds are not complete: every CAPTURED payment is refunded at the
   gateway (idempotent by paymentId), then one transaction per ≤ 99 payments moves them
   CAPTURED→REFUNDED and subtracts their sum from fundingAmount, keeping fundingAmount equal to
   the sum of CAPTURED payments. `refundsCompletedAt` is set only when the strongly consistent
   fundingAmount reaches 0, so a payment missed by the (eventually consistent) index is picked
   up on the next run rather than forgotten.
The close event is re-published (same eventId) until `closeEventPublishedAt` records it, so a
crash between the transition and the publish loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared import contract as c
from lambdas.shared.campaigns import amount_of, deadline, fundings_table, get_campaign
from lambdas.shared.config import require_environment
from lambdas.shared.contract import CampaignState, EventType, Metric, PaymentState
from lambdas.shared.events import derived_event_id, payment_event, publish
from lambdas.shared.gateway import GatewayError, gateway_client
from lambdas.shared.payments import STATE, payments_table
from lambdas.shared.telemetry import correlated, count, function_logger, function_metrics

FUNCTION = "campaign_closer"
ENVIRONMENT: tuple[str, ...] = (
    c.FUNDINGS_TABLE.env_var,
    c.PAYMENTS_TABLE.env_var,
    c.ENV_PAYMENTS_TOPIC_ARN,
    c.ENV_FUNDING_TARGET_TOPIC_ARN,
    c.ENV_PG_GATEWAY_FUNCTION,
)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

REFUND_CHUNK = 99
RECENT_CLOSE_WINDOW = timedelta(days=7)
"""How far back SUCCEEDED-at-deadline campaigns are re-checked for an unpublished close event."""

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


def _due_campaigns(now: datetime) -> list[dict[str, Any]]:
    now_iso = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    items = aws.query(
        fundings_table(),
        index=c.FUNDINGS_BY_STATE_INDEX,
        key_condition="#state = :open AND endDate < :now",
        values={":open": str(CampaignState.OPEN), ":now": now_iso},
        names=STATE,
    )
    return [item for item in items if deadline(str(item["endDate"])) <= now]


def _close(campaign: dict[str, Any], now_iso: str) -> dict[str, Any] | None:
    """OPEN → SUCCEEDED/FAILED on the fundingAmount we read; None if it changed meanwhile."""
    raised, goal = amount_of(campaign, "fundingAmount"), amount_of(campaign, "goalAmount")
    succeeded = goal > 0 and raised >= goal
    values: dict[str, Any] = {
        ":open": str(CampaignState.OPEN),
        ":new": str(CampaignState.SUCCEEDED if succeeded else CampaignState.FAILED),
        ":seen": raised,
        ":now": now_iso,
    }
    update = "SET #state = :new, closedAt = :now, updatedAt = :now"
    if succeeded:
        update += ", goalReachedAt = if_not_exists(goalReachedAt, :now)"
    unset = " OR attribute_not_exists(fundingAmount)" if raised == 0 else ""
    return aws.update_item(
        fundings_table(),
        {"fundingId": campaign["fundingId"]},
        update,
        values,
        condition=f"#state = :open AND (fundingAmount = :seen{unset})",
        names=STATE,
    )


def _publish_close_event(campaign: dict[str, Any]) -> None:
    if campaign.get("closeEventPublishedAt"):
        return
    event_type = (
        EventType.FUNDING_SUCCEEDED
        if campaign["state"] == CampaignState.SUCCEEDED
        else EventType.FUNDING_FAILED
    )
    publish(
        c.make_event(
            event_type,
            payment_id=c.CAMPAIGN_EVENT_PAYMENT_ID,
            funding_id=campaign["fundingId"],
            user_id=campaign.get("ownerId"),
            occurred_at=campaign["closedAt"],
            event_id=derived_event_id(event_type, campaign["fundingId"]),
            fundingAmount=amount_of(campaign, "fundingAmount"),
            goalAmount=campaign.get("goalAmount"),
        )
    )
    aws.update_item(
        fundings_table(),
        {"fundingId": campaign["fundingId"]},
        "SET closeEventPublishedAt = :now",
        {":now": c.utc_now_iso()},
    )


def _captured_payments(funding_id: str) -> list[dict[str, Any]]:
    return list(
        aws.query(
            payments_table(),
            index=c.PAYMENTS_BY_FUNDING_INDEX,
            key_condition="fundingId = :fid",
            values={":fid": funding_id, ":captured": str(PaymentState.CAPTURED)},
            names=STATE,
            filter_expression="#state = :captured",
        )
    )


def _refund_transaction(funding_id: str, refunds: list[tuple[dict[str, Any], str, str]]) -> None:
    """Move refunded payments to REFUNDED and subtract their sum, atomically."""
    total = sum(p["amount"] for p, _, _ in refunds)
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": fundings_table(),
                "Key": aws.to_attributes({"fundingId": funding_id}),
                "UpdateExpression": "SET fundingAmount = fundingAmount - :sum, updatedAt = :now",
                "ConditionExpression": "#state = :failed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": aws.to_attributes(
                    {":sum": total, ":failed": str(CampaignState.FAILED), ":now": c.utc_now_iso()}
                ),
            }
        }
    ]
    for payment, refunded_at, reference in refunds:
        items.append(
            {
                "Update": {
                    "TableName": payments_table(),
                    "Key": aws.to_attributes({"paymentId": payment["paymentId"]}),
                    "UpdateExpression": (
                        "SET #state = :refunded, refundedAt = :at, refundRef = :ref, updatedAt = :at"
                    ),
                    "ConditionExpression": "#state = :captured",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": aws.to_attributes(
                        {
                            ":refunded": str(PaymentState.REFUNDED),
                            ":captured": str(PaymentState.CAPTURED),
                            ":at": refunded_at,
                            ":ref": reference,
                        }
                    ),
                }
            }
        )
    aws.client("dynamodb").transact_write_items(TransactItems=items)


def refund_campaign(campaign: dict[str, Any]) -> int:
    """Refund every captured payment of a FAILED campaign; returns how many were refunded now."""
    funding_id = campaign["fundingId"]
    gateway = gateway_client()
    refunded = 0
    pending = _captured_payments(funding_id)
    for start in range(0, len(pending), REFUND_CHUNK):
        done: list[tuple[dict[str, Any], str, str]] = []
        for payment in pending[start : start + REFUND_CHUNK]:
            try:
                result = gateway.refund(payment["paymentId"], payment["amount"], fundingId=funding_id)
            except GatewayError as exc:
                logger.warning(
                    "refund not done yet; next run retries",
                    extra={"paymentId": payment["paymentId"], "reason": str(exc)},
                )
                continue
            done.append((payment, result.processed_at, result.reference))
        if not done:
            continue
        try:
            _refund_transaction(funding_id, done)
        except ClientError as exc:
            if aws.error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            logger.warning("refund transaction cancelled; next run re-reads", extra={"reasons": str(exc)})
            continue
        for payment, refunded_at, _ in done:
            payment.update(state=str(PaymentState.REFUNDED), refundedAt=refunded_at)
            publish(
                payment_event(
                    EventType.PAYMENT_REFUNDED, payment, occurred_at=refunded_at, reason="campaign failed"
                )
            )
        refunded += len(done)
        count(metrics, Metric.PAYMENTS_REFUNDED, len(done))
    current = get_campaign(funding_id)
    if current and amount_of(current, "fundingAmount") == 0:
        aws.update_item(
            fundings_table(),
            {"fundingId": funding_id},
            "SET refundsCompletedAt = :now",
            {":now": c.utc_now_iso(), ":zero": 0},
            condition="fundingAmount = :zero OR attribute_not_exists(fundingAmount)",
        )
        logger.info("all refunds done", extra={"fundingId": funding_id})
    return refunded


def _unfinished(state: CampaignState, *, since: str | None = None) -> list[dict[str, Any]]:
    """Closed campaigns with work left: close event unpublished or (FAILED) refunds incomplete."""
    values: dict[str, Any] = {":state": str(state)}
    key_condition = "#state = :state"
    if since:
        key_condition += " AND endDate >= :since"
        values[":since"] = since
    pending = "attribute_not_exists(closeEventPublishedAt)"
    if state == CampaignState.FAILED:
        pending += " OR attribute_not_exists(refundsCompletedAt)"
    return list(
        aws.query(
            fundings_table(),
            index=c.FUNDINGS_BY_STATE_INDEX,
            key_condition=key_condition,
            values=values,
            names=STATE,
            filter_expression=f"attribute_exists(closedAt) AND ({pending})",
        )
    )


def _finish(campaign: dict[str, Any], summary: dict[str, int]) -> None:
    _publish_close_event(campaign)
    if campaign["state"] == CampaignState.FAILED and not campaign.get("refundsCompletedAt"):
        summary["refunded"] += refund_campaign(campaign)


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """One scheduled run; returns what it did (also logged)."""
    now = datetime.now(UTC)
    now_iso = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    summary = {"succeeded": 0, "failed": 0, "refunded": 0, "errors": 0}
    for campaign in _due_campaigns(now):
        with correlated(logger, {"fundingId": campaign["fundingId"]}):
            try:
                closed = _close(campaign, now_iso)
                if closed is None:
                    logger.info("campaign changed while closing; next run decides")
                    continue
                summary["succeeded" if closed["state"] == CampaignState.SUCCEEDED else "failed"] += 1
                logger.info("campaign closed at its deadline", extra={"state": closed["state"]})
                _finish(closed, summary)
            except Exception:
                summary["errors"] += 1
                logger.exception("closing the campaign failed; next run retries")
    since = (now - RECENT_CLOSE_WINDOW).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for campaign in _unfinished(CampaignState.FAILED) + _unfinished(CampaignState.SUCCEEDED, since=since):
        with correlated(logger, {"fundingId": campaign["fundingId"]}):
            try:
                _finish(campaign, summary)
            except Exception:
                summary["errors"] += 1
                logger.exception("finishing a closed campaign failed; next run retries")
    logger.info("campaign closer run", extra=summary)
    metrics.flush_metrics()
    return summary
