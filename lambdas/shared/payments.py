"""Reading and moving payment items between states (conditional writes only).

Every transition is a conditional update on the current state, so two workers racing on the
same payment (a duplicate SQS delivery, the reconciler's re-publication, the retry path) can
never both apply it: the loser sees `None` and re-reads.
"""

from __future__ import annotations

from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import PAYMENTS_TABLE, PaymentState, utc_now_iso

STATE = {"#state": "state"}


def payments_table() -> str:
    return env_str(PAYMENTS_TABLE.env_var)


def get_payment(payment_id: str) -> dict[str, Any] | None:
    """The payment item, strongly consistent."""
    return aws.get_item(payments_table(), {PAYMENTS_TABLE.partition_key: payment_id})


def transition(
    payment_id: str,
    expected: PaymentState,
    new: PaymentState,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Move a payment from `expected` to `new` and set `fields`; None when it was not in `expected`."""
    now = utc_now_iso()
    values: dict[str, Any] = {":expected": str(expected), ":new": str(new), ":now": now}
    sets = ["#state = :new", "updatedAt = :now"]
    for i, (name, value) in enumerate((fields or {}).items()):
        values[f":f{i}"] = value
        sets.append(f"{name} = :f{i}")
    return aws.update_item(
        payments_table(),
        {PAYMENTS_TABLE.partition_key: payment_id},
        "SET " + ", ".join(sets),
        values,
        condition="#state = :expected",
        names=STATE,
    )


def set_once(payment_id: str, field: str, value: Any, *, state: PaymentState) -> dict[str, Any] | None:
    """Set `field` if not yet set while the payment is in `state`; returns the item (None: wrong state)."""
    return aws.update_item(
        payments_table(),
        {PAYMENTS_TABLE.partition_key: payment_id},
        f"SET {field} = if_not_exists({field}, :v), updatedAt = :now",
        {":v": value, ":now": utc_now_iso(), ":state": str(state)},
        condition="#state = :state",
        names=STATE,
    )
