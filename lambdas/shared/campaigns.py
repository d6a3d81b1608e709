"""Campaign items: reads and the deadline rule shared by the functions that close campaigns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import FUNDINGS_TABLE


def fundings_table() -> str:
    return env_str(FUNDINGS_TABLE.env_var)


def get_campaign(funding_id: str) -> dict[str, Any] | None:
    """The campaign item, strongly consistent."""
    return aws.get_item(fundings_table(), {FUNDINGS_TABLE.partition_key: funding_id})


def deadline(end_date: str) -> datetime:
    """The instant a campaign stops accepting payments.

    A date-only endDate ("2025-03-31") means the whole day counts, so the deadline is the next
    midnight UTC; a timestamp is taken as given (naive ones as UTC).
    """
    text = end_date.strip()
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(days=1)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def amount_of(item: dict[str, Any], field: str) -> int:
    """An integer amount attribute (0 when absent)."""
    return int(item.get(field) or 0)
