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
    TOPIC_OF_EVENT,
    EventType,
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


def publish(event: dict[str, Any]) -> str:
    """Publish `event` on the topic the contract assigns to its type; returns the SNS message id."""
    topic = TOPIC_OF_EVENT[EventType(event["type"])]
    response = aws.client("sns").publish(
        TopicArn=env_str(topic_env_var(topic)),
        Message=json.dumps(event, separators=(",", ":")),
        MessageAttributes=message_attributes(event),
    )
    return str(response["MessageId"])
