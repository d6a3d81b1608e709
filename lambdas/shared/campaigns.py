"""Campaign items: reads and the deadline rule shared by the functions that close campaigns."""

from __future__ import annotations

import re
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


_CANONICAL_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_utc(moment: datetime) -> str:
    """The storage format of every timestamp (UTC, milliseconds, `Z`), as the API writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deadline_passed(campaign: dict[str, Any], now: datetime) -> bool:
    """True once `now` is after the campaign's deadline (a campaign without endDate never ends)."""
    end_date = campaign.get("endDate")
    return bool(end_date) and now > deadline(str(end_date))


def open_until_condition(campaign: dict[str, Any], now: datetime) -> tuple[str, dict[str, Any]] | None:
    """A condition expression (and its values) that holds on the campaign item while now ≤ endDate.

    DynamoDB compares strings, so the comparison is made in the stored format: a canonical
    timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`, what the API writes) against `now` in that format; a
    date-only endDate (the whole day counts) against today's date. Any other format is pinned to
    the exact value read (`endDate = :seen`), and the caller checks that value in Python
    (`deadline_passed`) just before. None when the campaign has no endDate.
    """
    end_date = campaign.get("endDate")
    if not end_date:
        return None
    text = str(end_date)
    if _CANONICAL_TIMESTAMP.match(text):
        return "endDate >= :openUntil", {":openUntil": iso_utc(now)}
    if _DATE_ONLY.match(text):
        return "endDate >= :openUntil", {":openUntil": now.astimezone(UTC).date().isoformat()}
    return "endDate = :openUntil", {":openUntil": text}
