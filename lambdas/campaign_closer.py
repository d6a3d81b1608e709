"""campaign_closer (scheduled): close campaigns whose deadline has passed; refund failed and
deleted ones; finish what a crash or an outage left of earlier closes.

Trigger: EventBridge schedule (the event's content is not used). Out: funding.succeeded /
funding.failed, payment.refunded, funding.goal_reached (re-sent when never published).

1. OPEN campaigns with endDate < now (byStateEndDate index): SUCCEEDED when fundingAmount ≥
   goalAmount, else FAILED. The transition is conditional on the campaign still being OPEN with
   the fundingAmount we read (stored as `closeFundingAmount`, which the close event carries),
   and funding_update refuses to capture once the deadline has passed, so the decision cannot
   depend on scheduling.
2. FAILED campaigns, and DELETED ones (the owner cancelled while OPEN, before the deadline), are
   settled the same way: every CAPTURED payment is refunded at the gateway (once per payment
   there), then one transaction per ≤ 99 payments moves them CAPTURED→REFUNDED (with `owed` =
   REFUNDED and the reason) and subtracts their sum from fundingAmount (condition: campaign
   FAILED or DELETED), keeping fundingAmount equal to the sum of CAPTURED payments. Then their
   payment.refunded events go out with PublishBatch and each sent one clears its `owed`; a
   failed publish stops nothing (the payment stays owed: the next run, or the sweeper, re-sends
   the same event). `refundsCompletedAt` is set only when the strongly consistent fundingAmount
   is 0 AND no refunded payment of the campaign still owes its event.
   A deletion has no close event: the owner asked for it, and each backer hears through
   payment.refunded (its reason says the campaign was cancelled).
3. SUCCEEDED campaigns whose goal-crossing capture committed but whose funding.goal_reached
   never went out (goalPaymentId set, goalPublishedAt absent, older than a short grace so an
   in-flight funding_update is not raced) get it published (same eventId and occurredAt).
The close event is re-published (same eventId) until `closeEventPublishedAt` records it, so a
crash between the transition and the publish loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared import contract as c
from lambdas.shared.campaigns import amount_of, deadline, fundings_table, get_campaign, iso_utc
from lambdas.shared.config import require_environment
from lambdas.shared.contract import CampaignState, EventType, Metric, PaymentState
from lambdas.shared.events import derived_event_id, goal_reached_event, publish
from lambdas.shared.gateway import GatewayError, gateway_client
from lambdas.shared.owed import settle
from lambdas.shared.payments import STATE, payments_table
from lambdas.shared.telemetry import correlated, count, function_logger, function_metrics
from lambdas.specs.campaign_closer import SPEC

require_environment(SPEC.environment, function=SPEC.name)

REFUND_CHUNK = 99
RECENT_CLOSE_WINDOW = timedelta(days=7)
"""How far back SUCCEEDED campaigns (by endDate) are re-checked for an unpublished event."""
GOAL_EVENT_GRACE = timedelta(minutes=2)
"""funding_update publishes funding.goal_reached right after its commit; only older ones are re-sent."""
REFUND_REASONS: dict[str, str] = {
    CampaignState.FAILED: "the campaign did not reach its goal by its deadline",
    CampaignState.DELETED: "the campaign was cancelled by its creator",
}
"""The reason a refund carries (stored on the payment, so its event is the same when re-sent)."""

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


def _due_campaigns(now: datetime) -> list[dict[str, Any]]:
    items = aws.query(
        fundings_table(),
        index=c.FUNDINGS_BY_STATE_INDEX,
        key_condition="#state = :open AND endDate < :now",
        values={":open": str(CampaignState.OPEN), ":now": iso_utc(now)},
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
    update = "SET #state = :new, closedAt = :now, updatedAt = :now, closeFundingAmount = :seen"
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
    """funding.succeeded / funding.failed of a campaign closed at its deadline (not a deletion)."""
    if campaign.get("closeEventPublishedAt") or not campaign.get("closedAt"):
        return
    event_type = (
        EventType.FUNDING_SUCCEEDED
        if campaign["state"] == CampaignState.SUCCEEDED
        else EventType.FUNDING_FAILED
    )
    # The amount at the close, not the current one: refunds lower fundingAmount, and a re-sent
    # event must be identical to the first (the ledger records each event once).
    raised = campaign.get("closeFundingAmount", amount_of(campaign, "fundingAmount"))
    publish(
        c.make_event(
            event_type,
            payment_id=c.CAMPAIGN_EVENT_PAYMENT_ID,
            funding_id=campaign["fundingId"],
            user_id=campaign.get("ownerId"),
            occurred_at=campaign["closedAt"],
            event_id=derived_event_id(event_type, campaign["fundingId"]),
            fundingAmount=raised,
            goalAmount=campaign.get("goalAmount"),
        )
    )
    aws.update_item(
        fundings_table(),
        {"fundingId": campaign["fundingId"]},
        "SET closeEventPublishedAt = :now",
        {":now": c.utc_now_iso()},
    )


def _publish_goal_reached(campaign: dict[str, Any], now: datetime) -> None:
    """Re-send funding.goal_reached of a campaign whose crossing capture committed without it."""
    if not campaign.get("goalPaymentId") or campaign.get("goalPublishedAt"):
        return
    if campaign.get("goalReachedAt", "") > iso_utc(now - GOAL_EVENT_GRACE):
        return  # funding_update is most likely publishing it right now
    publish(goal_reached_event(campaign))
    aws.update_item(
        fundings_table(),
        {"fundingId": campaign["fundingId"]},
        "SET goalPublishedAt = :now",
        {":now": c.utc_now_iso()},
        condition="attribute_not_exists(goalPublishedAt)",
    )
    count(metrics, Metric.GOALS_REACHED)
    logger.warning("funding.goal_reached had never been published; sent it now")


def _refund_work(funding_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(CAPTURED payments to refund, REFUNDED payments whose event is still owed) of a campaign."""
    items = aws.query(
        payments_table(),
        index=c.PAYMENTS_BY_FUNDING_INDEX,
        key_condition="fundingId = :fid",
        values={
            ":fid": funding_id,
            ":captured": str(PaymentState.CAPTURED),
            ":refunded": str(PaymentState.REFUNDED),
        },
        names=STATE,
        filter_expression=f"#state = :captured OR (#state = :refunded AND {c.OWED_ATTRIBUTE} = :refunded)",
    )
    captured: list[dict[str, Any]] = []
    owed: list[dict[str, Any]] = []
    for item in items:
        (captured if item["state"] == PaymentState.CAPTURED else owed).append(item)
    return captured, owed


def _refund_transaction(
    funding_id: str, refunds: list[tuple[dict[str, Any], str, str]], reason: str, now: str
) -> None:
    """Move refunded payments to REFUNDED (owing their event) and subtract their sum, atomically."""
    total = sum(p["amount"] for p, _, _ in refunds)
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": fundings_table(),
                "Key": aws.to_attributes({"fundingId": funding_id}),
                "UpdateExpression": "SET fundingAmount = fundingAmount - :sum, updatedAt = :now",
                "ConditionExpression": "#state IN (:failed, :deleted)",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": aws.to_attributes(
                    {
                        ":sum": total,
                        ":failed": str(CampaignState.FAILED),
                        ":deleted": str(CampaignState.DELETED),
                        ":now": now,
                    }
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
                        "SET #state = :refunded, refundedAt = :at, refundRef = :ref, refundReason = :reason,"
                        f" updatedAt = :now, {c.OWED_ATTRIBUTE} = :refunded, {c.OWED_SINCE_ATTRIBUTE} = :now"
                    ),
                    # Never over an owed payment.captured (REFUNDED would replace that `owed`).
                    "ConditionExpression": f"#state = :captured AND attribute_not_exists({c.OWED_ATTRIBUTE})",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": aws.to_attributes(
                        {
                            ":refunded": str(PaymentState.REFUNDED),
                            ":captured": str(PaymentState.CAPTURED),
                            ":at": refunded_at,
                            ":ref": reference,
                            ":reason": reason,
                            ":now": now,
                        }
                    ),
                }
            }
        )
    aws.client("dynamodb").transact_write_items(TransactItems=items)


def _captures_announced(captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The captured payments whose payment.captured went out; sends the ones still owed first.

    REFUNDED replaces `owed`, so refunding a payment whose capture event is still owed would
    lose that event (and the ledger would show a refund of money it never saw captured). Those
    are announced first; any still unsent wait for the next run.
    """
    owed = [p for p in captured if p.get(c.OWED_ATTRIBUTE)]
    if not owed:
        return captured
    outcome = settle(owed, logger)
    done = set(outcome.cleared)
    for payment in owed:
        if payment["paymentId"] in done:
            payment.pop(c.OWED_ATTRIBUTE, None)
            payment.pop(c.OWED_SINCE_ATTRIBUTE, None)
    ready = [p for p in captured if not p.get(c.OWED_ATTRIBUTE)]
    if len(ready) < len(captured):
        logger.warning(
            "captures whose event is still owed are refunded next run",
            extra={"waiting": len(captured) - len(ready)},
        )
    return ready


def refund_campaign(campaign: dict[str, Any]) -> int:
    """Refund every captured payment of a FAILED or DELETED campaign and announce each refund.

    Returns how many payments were refunded in this call.
    """
    funding_id = campaign["fundingId"]
    reason = REFUND_REASONS[campaign["state"]]
    gateway = gateway_client()
    found, announce = _refund_work(funding_id)
    captured = _captures_announced(found)
    refunded = 0
    for start in range(0, len(captured), REFUND_CHUNK):
        done: list[tuple[dict[str, Any], str, str]] = []
        for payment in captured[start : start + REFUND_CHUNK]:
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
        now = c.utc_now_iso()
        try:
            _refund_transaction(funding_id, done, reason, now)
        except ClientError as exc:
            if aws.error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            logger.warning(
                "refund transaction cancelled; next run re-reads",
                extra={"reasons": aws.cancellation_codes(exc)},
            )
            continue
        for payment, refunded_at, reference in done:
            payment.update(
                {
                    "state": str(PaymentState.REFUNDED),
                    "refundedAt": refunded_at,
                    "refundRef": reference,
                    "refundReason": reason,
                    c.OWED_ATTRIBUTE: str(PaymentState.REFUNDED),
                    c.OWED_SINCE_ATTRIBUTE: now,
                }
            )
            announce.append(payment)
        refunded += len(done)
        count(metrics, Metric.PAYMENTS_REFUNDED, len(done))
    announced = settle(announce, logger) if announce else None
    if announced is not None and not announced.complete:
        logger.warning(
            "refund events not all sent; next run (or the sweeper) re-sends them",
            extra={"unsent": len(announced.unfinished)},
        )
        return refunded
    current = get_campaign(funding_id)
    if current and amount_of(current, "fundingAmount") == 0:
        aws.update_item(
            fundings_table(),
            {"fundingId": funding_id},
            "SET refundsCompletedAt = :now",
            {":now": c.utc_now_iso(), ":zero": 0},
            condition="fundingAmount = :zero OR attribute_not_exists(fundingAmount)",
        )
        logger.info("all refunds done", extra={"fundingId": funding_id, "state": campaign["state"]})
    return refunded


def _unfinished(state: CampaignState, *, since: str | None = None) -> list[dict[str, Any]]:
    """Closed or deleted campaigns with work left (see the module docstring)."""
    values: dict[str, Any] = {":state": str(state)}
    key_condition = "#state = :state"
    if since:
        key_condition += " AND endDate >= :since"
        values[":since"] = since
    close_event_owed = "(attribute_exists(closedAt) AND attribute_not_exists(closeEventPublishedAt))"
    if state == CampaignState.FAILED:
        pending = f"{close_event_owed} OR attribute_not_exists(refundsCompletedAt)"
    elif state == CampaignState.DELETED:
        pending = "attribute_not_exists(refundsCompletedAt)"
    else:
        goal_event_owed = "(attribute_exists(goalPaymentId) AND attribute_not_exists(goalPublishedAt))"
        pending = f"{close_event_owed} OR {goal_event_owed}"
    return list(
        aws.query(
            fundings_table(),
            index=c.FUNDINGS_BY_STATE_INDEX,
            key_condition=key_condition,
            values=values,
            names=STATE,
            filter_expression=pending,
        )
    )


def _finish(campaign: dict[str, Any], summary: dict[str, int], now: datetime) -> None:
    _publish_close_event(campaign)
    if campaign["state"] == CampaignState.SUCCEEDED:
        _publish_goal_reached(campaign, now)
    if campaign["state"] in REFUND_REASONS and not campaign.get("refundsCompletedAt"):
        summary["refunded"] += refund_campaign(campaign)


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """One scheduled run; returns what it did (also logged)."""
    now = datetime.now(UTC)
    now_iso = iso_utc(now)
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
                _finish(closed, summary, now)
            except Exception:
                summary["errors"] += 1
                logger.exception("closing the campaign failed; next run retries")
    since = iso_utc(now - RECENT_CLOSE_WINDOW)
    unfinished = (
        _unfinished(CampaignState.FAILED)
        + _unfinished(CampaignState.DELETED)
        + _unfinished(CampaignState.SUCCEEDED, since=since)
    )
    for campaign in unfinished:
        with correlated(logger, {"fundingId": campaign["fundingId"]}):
            try:
                _finish(campaign, summary, now)
            except Exception:
                summary["errors"] += 1
                logger.exception("finishing a closed campaign failed; next run retries")
    logger.info("campaign closer run", extra=summary)
    metrics.flush_metrics()
    return summary
