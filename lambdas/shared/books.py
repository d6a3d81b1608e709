"""A campaign's books, audited from its tables and its ledger. Pure: no AWS calls, no clock.

The scheduled `books_auditor` function and `make audit` (local/audit.py) read the same
three things per campaign — the campaign item, its payment items, its ledger rows — and hand
them to `audit_campaign`, which returns a balance sheet and the findings. Nothing here reads a
table, so both tools check exactly the same rules (DESIGN §3):

- the books balance: ledger captured - refunded = `fundingAmount` = sum of CAPTURED payments;
- every terminal payment has its terminal event(s) in the ledger exactly once (a REFUNDED one
  also its payment.captured), and the ledger holds no state event its payment contradicts;
- no payment stays PENDING/APPROVED past the horizon;
- no authorization is held: `authorizationRef` set, not CAPTURED/REFUNDED, no `voidedAt`;
- a FAILED or DELETED campaign holds no captured money once its refunds were due.

The ledger is written asynchronously (SNS → SQS → ledger_recorder), and owed work is finished by
the sweeper after `RECONCILE_AFTER_SECONDS`, so a recent change may legitimately be missing from
the ledger: an event whose state change is younger than the horizon is "in flight", counted on
the balance sheet, not a finding. Past the horizon nothing is excused. The reads of one campaign
are not a snapshot (and the byFunding index is eventually consistent), so callers pass the
campaign item read again after its payments (`campaign_after`: if its money moved meanwhile, the
campaign-level checks wait for a quieter read), and re-read a campaign with findings, keeping
only those `confirmed` by both reads.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from lambdas.shared.contract import (
    CAMPAIGN_EVENT_PAYMENT_ID,
    EVENT_OF_STATE,
    STATE_TIMESTAMP,
    TERMINAL_PAYMENT_STATES,
    CampaignState,
    EventType,
    Metric,
    PaymentState,
)


class FindingKind(StrEnum):
    """What is wrong. Each kind is one metric (`METRIC_OF_KIND`) and one alarm."""

    BOOKS_UNBALANCED = "books_unbalanced"
    LEDGER_EVENT_MISSING = "ledger_event_missing"
    LEDGER_EVENT_DUPLICATED = "ledger_event_duplicated"
    LEDGER_EVENT_UNEXPECTED = "ledger_event_unexpected"
    PAYMENT_STUCK = "payment_stuck"
    AUTHORIZATION_HELD = "authorization_held"
    REFUNDS_OVERDUE = "refunds_overdue"


METRIC_OF_KIND: dict[FindingKind, Metric] = {
    FindingKind.BOOKS_UNBALANCED: Metric.BOOKS_UNBALANCED,
    FindingKind.LEDGER_EVENT_MISSING: Metric.LEDGER_EVENTS_MISSING,
    FindingKind.LEDGER_EVENT_DUPLICATED: Metric.LEDGER_EVENTS_DUPLICATED,
    FindingKind.LEDGER_EVENT_UNEXPECTED: Metric.LEDGER_EVENTS_UNEXPECTED,
    FindingKind.PAYMENT_STUCK: Metric.PAYMENTS_STUCK,
    FindingKind.AUTHORIZATION_HELD: Metric.AUTHORIZATIONS_HELD,
    FindingKind.REFUNDS_OVERDUE: Metric.REFUNDS_OVERDUE,
}
"""The metric that counts each kind of finding (one per campaign or per payment event)."""

_ENTERED: dict[PaymentState, str] = {PaymentState.PENDING: "createdAt", **STATE_TIMESTAMP}
STATE_TIME: dict[str, str] = {str(state): attribute for state, attribute in _ENTERED.items()}
"""The attribute holding the moment a payment entered each state (the event's occurredAt)."""


def _events_implied_by(state: PaymentState) -> tuple[tuple[EventType, str], ...]:
    """A terminal state's ledger events, each with its dating attribute (a refund was a capture first)."""
    entered = ((EVENT_OF_STATE[state], STATE_TIMESTAMP[state]),)
    if state == PaymentState.REFUNDED:
        return _events_implied_by(PaymentState.CAPTURED) + entered
    return entered


EXPECTED_EVENTS: dict[str, tuple[tuple[EventType, str], ...]] = {
    state: _events_implied_by(state) for state in sorted(TERMINAL_PAYMENT_STATES)
}
"""Terminal state → the ledger events it implies, each with the attribute dating its state change."""

TERMINAL_EVENTS = frozenset(event for events in EXPECTED_EVENTS.values() for event, _ in events)
MONEY_SIGN: dict[str, int] = {EventType.PAYMENT_CAPTURED: 1, EventType.PAYMENT_REFUNDED: -1}
"""How each money event moves the ledger's balance."""
UNSUCCESSFUL = frozenset({CampaignState.FAILED, CampaignState.DELETED})
MONEY_ATTRIBUTES = ("state", "fundingAmount", "refundsCompletedAt")
"""Campaign attributes whose change between two reads means money moved during the read."""
NOT_HOLDING = frozenset({PaymentState.CAPTURED, PaymentState.REFUNDED})
"""States whose authorization has become a capture (nothing left to void)."""

SETTLEMENT_MARGIN_SECONDS = 900
"""Added to the horizon: the ledger's own redeliveries (5 receives x 180 s visibility before its
DLQ) and one failed sweeper run, so a slow but healthy system raises no finding."""


def settlement_horizon_seconds(
    *,
    retry_max_attempts: int,
    retry_max_delay_seconds: int,
    reconcile_after_seconds: int,
    attempt_seconds: int,
    sweep_period_seconds: int,
    margin_seconds: int = SETTLEMENT_MARGIN_SECONDS,
) -> int:
    """How long a payment may take to settle with its events recorded, on a healthy system.

    Each of `retry_max_attempts` attempts may spend `attempt_seconds` in the processing queue
    (its receives, each ending at the visibility timeout) and then wait up to
    `retry_max_delay_seconds` before the next one; work still owed after that is finished by
    the sweeper once it is `reconcile_after_seconds` old, on its next run
    (`sweep_period_seconds`); `margin_seconds` covers the ledger's own redeliveries.
    """
    values = {
        "retry_max_attempts": retry_max_attempts,
        "retry_max_delay_seconds": retry_max_delay_seconds,
        "reconcile_after_seconds": reconcile_after_seconds,
        "attempt_seconds": attempt_seconds,
        "sweep_period_seconds": sweep_period_seconds,
        "margin_seconds": margin_seconds,
    }
    negative = [f"{name}={value}" for name, value in values.items() if value < 0]
    if negative:
        raise ValueError(f"settlement horizon: {', '.join(negative)}; allowed: 0 or more")
    retries = retry_max_attempts * (attempt_seconds + retry_max_delay_seconds)
    return retries + reconcile_after_seconds + sweep_period_seconds + margin_seconds


_RATE = re.compile(r"^rate\((?P<n>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


def rate_seconds(expression: str) -> int:
    """Seconds between runs of an EventBridge `rate(...)` schedule (the sweeper's, for the horizon)."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise ValueError(
            f"schedule {expression!r} is not a rate; allowed: rate(<n> minute[s]|hour[s]|day[s])"
        )
    return int(match["n"]) * _UNIT_SECONDS[match["unit"].rstrip("s")]


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a campaign's books: its kind, the ids involved and what to look at."""

    kind: FindingKind
    funding_id: str
    message: str
    payment_ids: tuple[str, ...] = ()
    event_type: str | None = None

    @property
    def key(self) -> tuple[str, str, tuple[str, ...], str]:
        """Identity across two reads of the same campaign (the message's figures may move)."""
        return (str(self.kind), self.funding_id, self.payment_ids, self.event_type or "")

    def as_log(self) -> dict[str, Any]:
        """The structured fields a log line carries."""
        fields: dict[str, Any] = {"kind": str(self.kind), "fundingId": self.funding_id}
        if self.payment_ids:
            fields["paymentIds"] = list(self.payment_ids)
        if self.event_type:
            fields["eventType"] = self.event_type
        return fields


@dataclass(frozen=True)
class BalanceSheet:
    """One campaign's money, as the tables and the ledger each tell it.

    Attributes:
        funding_id: The campaign.
        state: The campaign's state.
        goal_amount: Its goal.
        funding_amount: Its `fundingAmount` (0 when absent).
        captured_total: Sum of its CAPTURED payments.
        ledger_captured: Sum of the ledger's payment.captured rows.
        ledger_refunded: Sum of the ledger's payment.refunded rows.
        in_flight_captured: Captures younger than the horizon whose event is not in the ledger yet.
        in_flight_refunded: Refunds younger than the horizon whose event is not in the ledger yet.
        payments_by_state: How many payments are in each state.
        moving: The campaign's money changed while it was read (its item differed before and
            after): the campaign-level checks were skipped for this read.
    """

    funding_id: str
    state: str
    goal_amount: int
    funding_amount: int
    captured_total: int
    ledger_captured: int
    ledger_refunded: int
    in_flight_captured: int = 0
    in_flight_refunded: int = 0
    payments_by_state: Mapping[str, int] = field(default_factory=dict)
    moving: bool = False

    @property
    def ledger_net(self) -> int:
        """What the ledger alone says the campaign holds."""
        return self.ledger_captured - self.ledger_refunded

    @property
    def expected_net(self) -> int:
        """The ledger's balance once the events in flight are recorded."""
        return self.ledger_net + self.in_flight_captured - self.in_flight_refunded

    @property
    def balanced(self) -> bool:
        """Ledger (with what is in flight) = fundingAmount = sum of CAPTURED."""
        return self.expected_net == self.funding_amount == self.captured_total

    @property
    def payments(self) -> int:
        """How many payments the campaign has."""
        return sum(self.payments_by_state.values())


@dataclass(frozen=True)
class CampaignAudit:
    """A campaign's balance sheet and findings."""

    sheet: BalanceSheet
    findings: tuple[Finding, ...] = ()


# --- reading the items -----------------------------------------------------------------------


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp (or date) as an aware UTC datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if len(text) > 10 else text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _amount(value: object) -> int:
    """An amount attribute as an int (0 when absent or not a number)."""
    if isinstance(value, int | float | Decimal):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def _row_event(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("event")
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def row_type(row: Mapping[str, Any]) -> str:
    """A ledger row's event type (its `type`, else the recorded event's)."""
    return str(row.get("type") or _row_event(row).get("type") or "")


def row_payment_id(row: Mapping[str, Any]) -> str:
    """A ledger row's payment id (its `paymentId`, else the recorded event's)."""
    return str(row.get("paymentId") or _row_event(row).get("paymentId") or "")


def row_amount(row: Mapping[str, Any]) -> int:
    """A ledger row's amount (its `amount`, else the recorded event's; 0 when absent)."""
    if row.get("amount") is not None:
        return _amount(row.get("amount"))
    return _amount(_row_event(row).get("amount"))


def _changed_at(payment: Mapping[str, Any], attribute: str) -> datetime | None:
    """When the payment made the change `attribute` dates (falling back to updatedAt, createdAt)."""
    for name in (attribute, "updatedAt", "createdAt"):
        moment = parse_time(payment.get(name))
        if moment is not None:
            return moment
    return None


def _age(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    seconds = int((now - moment).total_seconds())
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    if seconds >= 120:
        return f"{seconds // 60} min ago"
    return f"{seconds} s ago"


def _past(now: datetime, moment: datetime | None, horizon: timedelta) -> bool:
    """Older than the horizon (an unknown time counts as old: nothing excuses it)."""
    return moment is None or now - moment > horizon


# --- the audit -------------------------------------------------------------------------------


def audit_campaign(
    campaign: Mapping[str, Any],
    payments: Sequence[Mapping[str, Any]],
    ledger: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    horizon_seconds: int,
    campaign_after: Mapping[str, Any] | None = None,
) -> CampaignAudit:
    """The balance sheet and findings of one campaign (see the module docstring for the rules).

    `payments` are the campaign's payment items, `ledger` its rows of the transactions table,
    `now` an aware datetime, `horizon_seconds` how long a change may take to settle and be
    recorded (0: nothing may be in flight, e.g. after the system went quiet).
    `campaign_after`, the campaign item read again after the payments and the ledger: when its
    money or state differs from `campaign`'s, payments moved during the read, so the checks that
    compare the campaign with its payments (balance, refunds overdue) are skipped for this read
    (a campaign with captures every millisecond is checked when it pauses, at the latest when it
    closes); the per-payment checks still run.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if horizon_seconds < 0:
        raise ValueError(f"horizon_seconds={horizon_seconds}; allowed: 0 or more")
    horizon = timedelta(seconds=horizon_seconds)
    funding_id = str(campaign["fundingId"])
    by_id = {str(p["paymentId"]): p for p in payments}
    findings: list[Finding] = []

    rows_of: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    ledger_money = {str(EventType.PAYMENT_CAPTURED): 0, str(EventType.PAYMENT_REFUNDED): 0}
    for row in ledger:
        kind, payment_id = row_type(row), row_payment_id(row)
        if kind in ledger_money:
            ledger_money[kind] += row_amount(row)
        if kind in TERMINAL_EVENTS and payment_id != CAMPAIGN_EVENT_PAYMENT_ID:
            rows_of[(payment_id, kind)].append(row)

    in_flight = {str(EventType.PAYMENT_CAPTURED): 0, str(EventType.PAYMENT_REFUNDED): 0}
    for payment_id, payment in sorted(by_id.items()):
        state = str(payment.get("state", ""))
        amount = _amount(payment.get("amount"))
        for event, attribute in EXPECTED_EVENTS.get(state, ()):
            if rows_of.get((payment_id, event)):
                continue
            moment = _changed_at(payment, attribute)
            if not _past(now, moment, horizon):
                if event in in_flight:
                    in_flight[event] += amount
                continue
            owed = f"; still owed since {payment['owedSince']}" if payment.get("owed") else ""
            findings.append(
                Finding(
                    FindingKind.LEDGER_EVENT_MISSING,
                    funding_id,
                    f"payment {payment_id} is {state} ({_age(now, moment)}) but the ledger has no "
                    f"{event} for it{owed}: the event was lost or never published",
                    (payment_id,),
                    str(event),
                )
            )

    for (payment_id, recorded), rows in sorted(rows_of.items()):
        known = by_id.get(payment_id)
        if len(rows) > 1:
            ids = sorted(str(r.get("eventId") or r.get("recordKey") or "?") for r in rows)
            findings.append(
                Finding(
                    FindingKind.LEDGER_EVENT_DUPLICATED,
                    funding_id,
                    f"the ledger records {recorded} of payment {payment_id} {len(rows)} times "
                    f"(eventIds {', '.join(ids)}): the books count it more than once",
                    (payment_id,),
                    recorded,
                )
            )
        if known is None:
            if recorded in MONEY_SIGN:
                findings.append(
                    Finding(
                        FindingKind.LEDGER_EVENT_UNEXPECTED,
                        funding_id,
                        f"the ledger records {recorded} of payment {payment_id}, which this campaign does "
                        "not have: money the tables do not know about",
                        (payment_id,),
                        recorded,
                    )
                )
            continue
        state = str(known.get("state", ""))
        if recorded not in {e for e, _ in EXPECTED_EVENTS.get(state, ())}:
            findings.append(
                Finding(
                    FindingKind.LEDGER_EVENT_UNEXPECTED,
                    funding_id,
                    f"the ledger records {recorded} of payment {payment_id}, but the payment is {state}: "
                    "the ledger and the payments table disagree",
                    (payment_id,),
                    recorded,
                )
            )

    for payment_id, payment in sorted(by_id.items()):
        state = str(payment.get("state", ""))
        if state not in TERMINAL_PAYMENT_STATES:
            created = parse_time(payment.get("createdAt"))
            if _past(now, created, horizon):
                findings.append(
                    Finding(
                        FindingKind.PAYMENT_STUCK,
                        funding_id,
                        f"payment {payment_id} is still {state or 'without a state'}, created "
                        f"{_age(now, created)} (horizon {horizon_seconds} s): nothing is settling it",
                        (payment_id,),
                    )
                )
        if payment.get("authorizationRef") and state not in NOT_HOLDING and not payment.get("voidedAt"):
            since = _changed_at(payment, STATE_TIME.get(state, "approvedAt"))
            if _past(now, since, horizon):
                findings.append(
                    Finding(
                        FindingKind.AUTHORIZATION_HELD,
                        funding_id,
                        f"payment {payment_id} is {state} since {_age(now, since)} with authorization "
                        f"{payment['authorizationRef']} never voided: the backer's money is held",
                        (payment_id,),
                    )
                )

    captured = sorted(pid for pid, p in by_id.items() if p.get("state") == PaymentState.CAPTURED)
    captured_total = sum(_amount(by_id[pid].get("amount")) for pid in captured)
    funding_amount = _amount(campaign.get("fundingAmount"))
    campaign_state = str(campaign.get("state", ""))
    moving = campaign_after is not None and any(
        campaign.get(name) != campaign_after.get(name) for name in MONEY_ATTRIBUTES
    )
    if campaign_state in UNSUCCESSFUL and not moving:
        closed = next(
            (
                moment
                for moment in (parse_time(campaign.get(n)) for n in ("closedAt", "deletedAt", "updatedAt"))
                if moment is not None
            ),
            None,
        )
        due = bool(campaign.get("refundsCompletedAt")) or _past(now, closed, horizon)
        if due and (captured or funding_amount > 0):
            findings.append(
                Finding(
                    FindingKind.REFUNDS_OVERDUE,
                    funding_id,
                    f"campaign {funding_id} is {campaign_state} (closed {_age(now, closed)}) but still holds "
                    f"{len(captured)} CAPTURED payment(s) worth {captured_total:,} and fundingAmount "
                    f"{funding_amount:,}: their refunds are overdue",
                    tuple(captured),
                )
            )

    sheet = BalanceSheet(
        funding_id=funding_id,
        state=campaign_state,
        goal_amount=_amount(campaign.get("goalAmount")),
        funding_amount=funding_amount,
        captured_total=captured_total,
        ledger_captured=ledger_money[EventType.PAYMENT_CAPTURED],
        ledger_refunded=ledger_money[EventType.PAYMENT_REFUNDED],
        in_flight_captured=in_flight[EventType.PAYMENT_CAPTURED],
        in_flight_refunded=in_flight[EventType.PAYMENT_REFUNDED],
        payments_by_state=dict(sorted(Counter(str(p.get("state", "")) for p in payments).items())),
        moving=moving,
    )
    if not sheet.balanced and not moving:
        pending = (
            f" (+{sheet.in_flight_captured:,} captured and -{sheet.in_flight_refunded:,} refunded in flight)"
            if sheet.in_flight_captured or sheet.in_flight_refunded
            else ""
        )
        findings.insert(
            0,
            Finding(
                FindingKind.BOOKS_UNBALANCED,
                funding_id,
                f"campaign {funding_id}'s books do not balance: ledger captured - refunded = "
                f"{sheet.ledger_captured:,} - {sheet.ledger_refunded:,} = {sheet.ledger_net:,}{pending}, "
                f"fundingAmount = {funding_amount:,}, sum of CAPTURED payments = {captured_total:,}",
            ),
        )
    return CampaignAudit(sheet, tuple(findings))


def confirmed(first: CampaignAudit, second: CampaignAudit) -> CampaignAudit:
    """The second read's audit, keeping only findings the first read had too (races drop out)."""
    if first.sheet.funding_id != second.sheet.funding_id:
        raise ValueError(
            f"confirmed: audits of two campaigns ({first.sheet.funding_id}, {second.sheet.funding_id}); "
            "allowed: two reads of the same campaign"
        )
    seen = {finding.key for finding in first.findings}
    return CampaignAudit(second.sheet, tuple(f for f in second.findings if f.key in seen))


def finding_counts(findings: Iterable[Finding]) -> dict[Metric, int]:
    """Findings per metric, every finding metric present (0 included, so alarms see data)."""
    counts = dict.fromkeys(METRIC_OF_KIND.values(), 0)
    for finding in findings:
        counts[METRIC_OF_KIND[finding.kind]] += 1
    return counts
