"""Per-user quotas on writes that cost money or attention: payments and new campaigns.

A payment costs a gateway authorization (card testing, fees) and a campaign is public content, so
one token may not create them without bound (issue 13 item 13); the WAF limits per IP only.

Counting holds across every API task because it lives in DynamoDB: one item per user and UTC day
in the idempotency table, `quota#<userId>#<yyyy-mm-dd>`, expiring (TTL `expiration`) a day after
that day ends. Each counted request makes exactly one conditional UpdateItem that adds 1 to every
counter it concerns unless one of them is already at its limit; a refused request counts nothing.

- payments per minute: attribute `m#<HHMM>` (the UTC minute), a fixed one-minute window;
- payments per campaign: attribute `p#<fundingId>`, per user, per campaign and per UTC day;
- campaigns per day: attribute `campaigns`.

A limit of 0 means unlimited: that counter is neither written nor checked, and a request with no
limited counter makes no call at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.errors import ApiError
from app.models import ErrorDetail
from app.store import ConditionFailed, CounterItemFull, Item, Store

COUNTER_PREFIX = "quota#"
CAMPAIGNS_COUNTER = "campaigns"


@dataclass(frozen=True)
class QuotaLimits:
    """The stack's limits (0 = unlimited)."""

    payments_per_minute: int
    payments_per_campaign_per_day: int
    campaigns_per_day: int


@dataclass(frozen=True)
class _Counter:
    attribute: str
    limit: int
    rule: str
    what: str
    resets_in_seconds: int


def counter_id(user_id: str, moment: datetime) -> str:
    """The counter item of a user's UTC day."""
    return f"{COUNTER_PREFIX}{user_id}#{moment:%Y-%m-%d}"


class Quotas:
    """Charges a user's request against the limits, or refuses it with a 429 and Retry-After."""

    def __init__(self, store: Store, limits: QuotaLimits, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock

    def charge_payment(self, user_id: str, funding_id: str) -> None:
        """Count one payment of `user_id` to `funding_id`, or raise the 429 of the limit it hits."""
        now = self._now()
        self._charge(
            user_id,
            now,
            [
                _Counter(
                    f"m#{now:%H%M}",
                    self._limits.payments_per_minute,
                    "payments_per_minute",
                    "payments per minute",
                    _seconds_to_next_minute(now),
                ),
                _Counter(
                    f"p#{funding_id}",
                    self._limits.payments_per_campaign_per_day,
                    "payments_per_campaign_per_day",
                    "payments to one campaign per day (UTC)",
                    _seconds_to_next_day(now),
                ),
            ],
        )

    def charge_campaign(self, user_id: str) -> None:
        """Count one new campaign of `user_id`, or raise the 429 of the daily limit."""
        now = self._now()
        self._charge(
            user_id,
            now,
            [
                _Counter(
                    CAMPAIGNS_COUNTER,
                    self._limits.campaigns_per_day,
                    "campaigns_per_day",
                    "new campaigns per day (UTC)",
                    _seconds_to_next_day(now),
                )
            ],
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _charge(self, user_id: str, now: datetime, counters: list[_Counter]) -> None:
        limited = [counter for counter in counters if counter.limit > 0]
        if not limited:
            return
        day_ends = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        expiration = int((day_ends + timedelta(days=1)).timestamp())
        try:
            self._store.count_against_limits(
                counter_id(user_id, now), {c.attribute: c.limit for c in limited}, expiration
            )
        except ConditionFailed as exc:
            raise _refusal(limited, exc.item) from None
        except CounterItemFull:
            message = "This account has made too many requests today; retry after midnight UTC"
            detail = ErrorDetail(location="quota", field="requests", rule="requests_per_day", message=message)
            raise _too_many(message, [detail], _seconds_to_next_day(now)) from None


def _refusal(counters: list[_Counter], stored: Item | None) -> ApiError:
    """The 429 for the counters that are full; Retry-After is when all of them have room again."""
    full = [c for c in counters if stored is not None and int(stored.get(c.attribute, 0)) >= c.limit]
    if not full:  # the refusal came without the item: name every limit this request is under
        full = counters
    wait = max(c.resets_in_seconds for c in full)
    described = "; ".join(f"at most {c.limit} {c.what}" for c in full)
    details = [
        ErrorDetail(location="quota", field=c.rule, rule=c.rule, message=f"at most {c.limit} {c.what}")
        for c in full
    ]
    return _too_many(f"Quota reached: {described} per user. Retry in {wait} s", details, wait)


def _too_many(message: str, details: list[ErrorDetail], wait: int) -> ApiError:
    return ApiError(429, "quota_exceeded", message, details, headers={"Retry-After": str(wait)})


def _seconds_to_next_minute(now: datetime) -> int:
    return max(1, math.ceil(60 - now.second - now.microsecond / 1_000_000))


def _seconds_to_next_day(now: datetime) -> int:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return max(1, math.ceil((midnight - now).total_seconds()))
