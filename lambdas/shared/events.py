"""Publishing events: one helper, topic chosen from the contract, deterministic derived events.

Events a function derives from stored state (payment.approved, payment.captured, …) get an
`eventId` computed from (type, subject) and an `occurredAt` read from the stored transition
timestamp. A retry that re-publishes after a crash therefore sends the *same* event, which the
ledger (keyed by occurredAt#eventId) and the notifier (idempotent on eventId) recognise.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import (
    EVENT_OF_STATE,
    STATE_REASON,
    STATE_TIMESTAMP,
    TOPIC_OF_EVENT,
    EventType,
    PaymentState,
    make_event,
    message_attributes,
    topic_env_var,
)

_EVENT_NAMESPACE = uuid.UUID("6f0c1d52-5a55-4d0e-9a52-2d0c8a4f7e31")
_PAYMENT_FIELDS_CARRIED = ("paymentMethod", "email")


def derived_event_id(event_type: EventType | str, subject: str) -> str:
    """A stable event id for the event of `event_type` about `subject` (a payment or campaign id)."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{EventType(event_type)}|{subject}"))


def payment_event(
    event_type: EventType, payment: dict[str, Any], *, occurred_at: str, **extra: Any
) -> dict[str, Any]:
    """A payment event built from the stored payment item, with a deterministic id."""
    carried = {k: payment[k] for k in _PAYMENT_FIELDS_CARRIED if payment.get(k)}
    carried.update(extra)
    return make_event(
        event_type,
        payment_id=payment["paymentId"],
        funding_id=payment["fundingId"],
        user_id=payment.get("userId"),
        amount=payment.get("amount"),
        occurred_at=occurred_at,
        event_id=derived_event_id(event_type, payment["paymentId"]),
        **carried,
    )


def state_event(payment: dict[str, Any]) -> dict[str, Any]:
    """The event of the payment's current state, built only from the stored item.

    Every publisher of a state's event (the function that made the transition, payment_retry,
    the sweeper) builds it here, so a re-publication is byte-identical to the first one: same
    eventId, same occurredAt (the stored transition time), same reason (stored with the state).
    The ledger relies on that to record each event once and to flag a key reused by another event.
    """
    state = PaymentState(payment["state"])
    event_type = EVENT_OF_STATE.get(state)
    if event_type is None:
        raise ValueError(f"payment {payment['paymentId']} is {state}: that state has no event")
    timestamp = STATE_TIMESTAMP[state]
    occurred_at = payment.get(timestamp)
    if not occurred_at:
        raise ValueError(f"payment {payment['paymentId']} is {state} but has no {timestamp}")
    reason_field = STATE_REASON.get(state)
    extra = {"reason": payment.get(reason_field)} if reason_field else {}
    return payment_event(event_type, payment, occurred_at=str(occurred_at), **extra)


def goal_reached_event(campaign: dict[str, Any]) -> dict[str, Any]:
    """funding.goal_reached of a campaign whose capture crossed its goal (deterministic, re-publishable)."""
    funding_id = campaign["fundingId"]
    return make_event(
        EventType.FUNDING_GOAL_REACHED,
        payment_id=campaign["goalPaymentId"],
        funding_id=funding_id,
        user_id=campaign.get("ownerId"),
        amount=int(campaign.get("fundingAmount") or 0) or None,
        occurred_at=campaign["goalReachedAt"],
        event_id=derived_event_id(EventType.FUNDING_GOAL_REACHED, funding_id),
        goalAmount=campaign.get("goalAmount"),
    )


def publish(event: dict[str, Any]) -> str:
    """Publish `event` on the topic the contract assigns to its type; returns the SNS message id."""
    topic = TOPIC_OF_EVENT[EventType(event["type"])]
    response = aws.client("sns").publish(
        TopicArn=env_str(topic_env_var(topic)),
        Message=json.dumps(event, separators=(",", ":")),
        MessageAttributes=message_attributes(event),
    )
    return str(response["MessageId"])


PUBLISH_BATCH_LIMIT = 10
"""SNS PublishBatch takes at most ten entries."""


def publish_all(events: list[dict[str, Any]]) -> list[int]:
    """Publish `events` with SNS PublishBatch (per topic, ten per call); returns indexes that failed.

    One call per ten events instead of one per event: the functions that emit an event per
    payment of a batch (the processor, funding_update) use it. A failed entry is reported, not
    raised, so the caller can fail exactly the records whose events did not go out; a re-delivery
    re-publishes the same derived event (same eventId), which consumers recognise.
    """
    by_topic: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        topic = TOPIC_OF_EVENT[EventType(event["type"])]
        by_topic.setdefault(env_str(topic_env_var(topic)), []).append(index)
    failed: list[int] = []
    sns = aws.client("sns")
    for topic_arn, indexes in by_topic.items():
        for start in range(0, len(indexes), PUBLISH_BATCH_LIMIT):
            chunk = indexes[start : start + PUBLISH_BATCH_LIMIT]
            entries = [
                {
                    "Id": str(index),
                    "Message": json.dumps(events[index], separators=(",", ":")),
                    "MessageAttributes": message_attributes(events[index]),
                }
                for index in chunk
            ]
            try:
                response = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
            except Exception:  # the whole call failed: every entry in it is owed
                failed.extend(chunk)
                continue
            failed.extend(int(entry["Id"]) for entry in response.get("Failed", []))
    return sorted(failed)
