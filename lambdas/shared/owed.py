"""Completing a payment's owed follow-up work: the void (FAILED/CANCELLED), then its event.

A transition into DECLINED, CAPTURED, FAILED, CANCELLED or REFUNDED sets `owed` (see
shared.payments). The function that made the transition normally completes the work right away;
when it cannot (an SNS or gateway outage, a crash, records exhausted into a DLQ nobody reads),
payment_retry and the scheduled sweeper (the reconciler) call `settle` on what is still owed.
Every step is idempotent: the gateway serializes voids per payment and answers a repeat with the
first answer, the event is rebuilt from the stored item (same eventId and occurredAt), and the
REMOVE of `owed` is conditional on the state whose work was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.shared.contract import OWED_ATTRIBUTE, PaymentState
from lambdas.shared.events import publish_all, state_event
from lambdas.shared.gateway import GatewayError, gateway_client
from lambdas.shared.payments import clear_owed, record_void

VOIDED_STATES = (PaymentState.FAILED, PaymentState.CANCELLED)
"""States whose authorization, if any, must be released at the gateway before they are announced."""


@dataclass
class Settlement:
    """What `settle` did: ids per outcome."""

    voided: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    unfinished: dict[str, str] = field(default_factory=dict)  # paymentId -> why

    @property
    def complete(self) -> bool:
        return not self.unfinished


def needs_void(payment: dict[str, Any]) -> bool:
    """FAILED/CANCELLED with no void recorded: an authorization may still hold the backer's money."""
    return payment["state"] in VOIDED_STATES and not payment.get("voidedAt")


def void(payment: dict[str, Any]) -> dict[str, Any]:
    """Void at the gateway and record `voidedAt`; the updated item. Raises GatewayError."""
    result = gateway_client().void(
        payment["paymentId"], payment["amount"], fundingId=payment.get("fundingId")
    )
    return record_void(payment["paymentId"], result.processed_at, result.reference) or dict(
        payment, voidedAt=result.processed_at, voidRef=result.reference
    )


def settle(payments: list[dict[str, Any]], logger: Logger) -> Settlement:
    """Void where needed, publish each payment's state event (PublishBatch), then clear `owed`.

    A payment whose void fails is announced all the same (its terminal state is final: the ledger
    and the backer hear of it now, even while the gateway is down) and keeps its `owed`, so the
    void is retried (by the record's redelivery or the sweeper) and the same event re-sent, which
    the ledger and the notifier recognise by its eventId. A payment whose event was not sent keeps
    its `owed`. Nothing raises for one payment's sake: the caller sees `unfinished` and decides (a
    queue consumer fails the record, the sweeper tries next run).
    """
    outcome = Settlement()
    ready: list[dict[str, Any]] = []
    void_owed: set[str] = set()
    for payment in payments:
        payment_id = payment["paymentId"]
        if needs_void(payment):
            try:
                payment = void(payment)
            except GatewayError as exc:
                logger.warning(
                    "void not done yet; still owed", extra={"paymentId": payment_id, "reason": str(exc)}
                )
                outcome.unfinished[payment_id] = f"void failed: {exc}"
                void_owed.add(payment_id)
            else:
                outcome.voided.append(payment_id)
        ready.append(payment)
    unsent = set(publish_all([state_event(p) for p in ready]))
    sent: list[dict[str, Any]] = []
    for index, payment in enumerate(ready):
        if index in unsent:
            outcome.unfinished.setdefault(payment["paymentId"], "event not published")
        else:
            outcome.published.append(payment["paymentId"])
            if payment["paymentId"] not in void_owed:
                sent.append(payment)
    unconfirmed = clear_owed(sent)
    for payment in sent:
        if not payment.get(OWED_ATTRIBUTE):
            continue
        if payment["paymentId"] in unconfirmed:
            logger.warning(
                "owed work done but its marker was not cleared", extra={"paymentId": payment["paymentId"]}
            )
        else:
            outcome.cleared.append(payment["paymentId"])
    return outcome
