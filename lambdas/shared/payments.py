"""Reading and moving payment items between states (conditional writes only).

Every transition is a conditional update on the current state, so two workers racing on the
same payment (a duplicate SQS delivery, the reconciler's re-publication, the retry path) can
never both apply it: the loser sees `None` (or the item that won) and decides from there.

A transition into a state that leaves follow-up work (contract.OWED_STATES) sets `owed` and
`owedSince` in the same write, so the work can never be forgotten between two writes: the
sparse byOwed index lists it until whoever completes the work calls `clear_owed`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import (
    OWED_ATTRIBUTE,
    OWED_SINCE_ATTRIBUTE,
    OWED_STATES,
    PAYMENTS_TABLE,
    PaymentState,
    utc_now_iso,
)

STATE = {"#state": "state"}
TRANSACTION_LIMIT = 100
"""DynamoDB's TransactWriteItems maximum."""
_CLEAR_ATTEMPTS = 3


def payments_table() -> str:
    return env_str(PAYMENTS_TABLE.env_var)


def get_payment(payment_id: str) -> dict[str, Any] | None:
    """The payment item, strongly consistent."""
    return aws.get_item(payments_table(), {PAYMENTS_TABLE.partition_key: payment_id})


def _transition_update(
    expected: PaymentState, new: PaymentState, fields: dict[str, Any] | None, now: str
) -> tuple[str, dict[str, Any]]:
    values: dict[str, Any] = {":expected": str(expected), ":new": str(new), ":now": now}
    sets = ["#state = :new", "updatedAt = :now"]
    if new in OWED_STATES:
        sets += [f"{OWED_ATTRIBUTE} = :new", f"{OWED_SINCE_ATTRIBUTE} = :now"]
    for i, (name, value) in enumerate((fields or {}).items()):
        values[f":f{i}"] = value
        sets.append(f"{name} = :f{i}")
    return "SET " + ", ".join(sets), values


def transition_or_current(
    payment_id: str,
    expected: PaymentState,
    new: PaymentState,
    fields: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Move a payment from `expected` to `new`: (new item, None), or (None, the item as it is)."""
    update, values = _transition_update(expected, new, fields, utc_now_iso())
    return aws.update_or_current(
        payments_table(),
        {PAYMENTS_TABLE.partition_key: payment_id},
        update,
        values,
        condition="#state = :expected",
        names=STATE,
    )


def transition(
    payment_id: str,
    expected: PaymentState,
    new: PaymentState,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Move a payment from `expected` to `new` and set `fields`; None when it was not in `expected`."""
    return transition_or_current(payment_id, expected, new, fields)[0]


def set_once(payment_id: str, field: str, value: Any, *, state: PaymentState) -> dict[str, Any] | None:
    """Set `field` if not yet set while the payment is in `state`; returns the item (None: wrong state)."""
    return set_fields_once(payment_id, {field: value}, state=state)


def set_fields_once(payment_id: str, fields: dict[str, Any], *, state: PaymentState) -> dict[str, Any] | None:
    """Set each of `fields` not yet set while the payment is in `state`; the item, or None (wrong state)."""
    values: dict[str, Any] = {":now": utc_now_iso(), ":state": str(state)}
    sets = ["updatedAt = :now"]
    for i, (name, value) in enumerate(fields.items()):
        values[f":v{i}"] = value
        sets.append(f"{name} = if_not_exists({name}, :v{i})")
    return aws.update_item(
        payments_table(),
        {PAYMENTS_TABLE.partition_key: payment_id},
        "SET " + ", ".join(sets),
        values,
        condition="#state = :state",
        names=STATE,
    )


def record_void(payment_id: str, voided_at: str, reference: str) -> dict[str, Any] | None:
    """Record the gateway's void on the payment (first one wins); the item, or None if absent."""
    return aws.update_item(
        payments_table(),
        {PAYMENTS_TABLE.partition_key: payment_id},
        "SET voidedAt = if_not_exists(voidedAt, :at), voidRef = if_not_exists(voidRef, :ref),"
        " updatedAt = :now",
        {":at": voided_at, ":ref": reference, ":now": utc_now_iso()},
        condition="attribute_exists(paymentId)",
    )


def _clear_item(payment_id: str, owed: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": payments_table(),
            "Key": aws.to_attributes({PAYMENTS_TABLE.partition_key: payment_id}),
            "UpdateExpression": f"REMOVE {OWED_ATTRIBUTE}, {OWED_SINCE_ATTRIBUTE}",
            "ConditionExpression": f"{OWED_ATTRIBUTE} = :owed",
            "ExpressionAttributeValues": aws.to_attributes({":owed": owed}),
        }
    }


def clear_owed(payments: Iterable[dict[str, Any]]) -> set[str]:
    """REMOVE `owed` of payments whose work is done; returns the ids it could not confirm.

    Each removal is conditional on `owed` still being the value the caller completed (a payment
    that moved on, e.g. CAPTURED → REFUNDED, owes new work that must not be erased). A refused
    condition means someone else cleared it or new work is owed: nothing left for us. Batches go
    in one TransactWriteItems per 100 (one call instead of one per payment on the hot path). A
    removal that fails otherwise is only logged by the caller: the work is done, and the worst
    outcome is that the sweeper repeats it (same deterministic event, recorded once).
    """
    todo = [(p["paymentId"], str(p[OWED_ATTRIBUTE])) for p in payments if p.get(OWED_ATTRIBUTE)]
    unconfirmed: set[str] = set()
    for start in range(0, len(todo), TRANSACTION_LIMIT):
        pending = todo[start : start + TRANSACTION_LIMIT]
        for attempt in range(_CLEAR_ATTEMPTS):
            if not pending:
                break
            try:
                if len(pending) == 1:
                    payment_id, owed = pending[0]
                    aws.update_item(
                        payments_table(),
                        {PAYMENTS_TABLE.partition_key: payment_id},
                        f"REMOVE {OWED_ATTRIBUTE}, {OWED_SINCE_ATTRIBUTE}",
                        {":owed": owed},
                        condition=f"{OWED_ATTRIBUTE} = :owed",
                    )
                else:
                    aws.client("dynamodb").transact_write_items(
                        TransactItems=[_clear_item(pid, owed) for pid, owed in pending]
                    )
                pending = []
            except ClientError as exc:
                codes = aws.cancellation_codes(exc)
                if codes:
                    pending = [
                        p for p, code in zip(pending, codes, strict=False) if code != "ConditionalCheckFailed"
                    ]
                if attempt + 1 < _CLEAR_ATTEMPTS:
                    time.sleep(random.uniform(0, 0.02 * 2**attempt))
        unconfirmed.update(pid for pid, _ in pending)
    return unconfirmed
