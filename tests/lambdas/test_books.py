"""The books auditor: the rules (lambdas/shared/books.py), the scheduled function, `make audit`.

The rules are tested on plain items (unit and property tests); the function and `make audit`
against moto tables, including books the real functions wrote (the pipeline of conftest).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.shared.contract import ENV_SETTLEMENT_HORIZON_SECONDS

# The function checks its environment at import (cold start): set the horizon the stack would.
os.environ.setdefault(ENV_SETTLEMENT_HORIZON_SECONDS, "3600")

from lambdas import books_auditor
from lambdas.shared import aws, contract
from lambdas.shared.books import (
    EXPECTED_EVENTS,
    METRIC_OF_KIND,
    STATE_TIME,
    CampaignAudit,
    Finding,
    FindingKind,
    audit_campaign,
    confirmed,
    finding_counts,
    parse_time,
    rate_seconds,
    settlement_horizon_seconds,
)
from lambdas.shared.contract import EventType, Metric, PaymentState
from local import audit as make_audit
from tests.lambdas.conftest import FakeContext, Platform, campaign_closer, iso

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HORIZON = 3600
FID = "f-1"
OLD = 2 * HORIZON
"""Seconds ago for a change past the horizon."""
RECENT = 60
"""Seconds ago for a change still within the horizon."""
EVENT_TIME = {str(event): attribute for events in EXPECTED_EVENTS.values() for event, attribute in events}
"""Event type -> the payment attribute its occurredAt is."""
SCHEDULE_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def ago(seconds: float, now: datetime = NOW) -> str:
    return iso(now - timedelta(seconds=seconds))


def payment(
    pid: str, state: str, amount: int = 10_000, *, age: int = OLD, now: datetime = NOW, **extra: Any
) -> dict[str, Any]:
    """A payment item that entered `state` `age` seconds ago (with the earlier states' times)."""
    item: dict[str, Any] = {
        "paymentId": pid,
        "fundingId": FID,
        "userId": "u-1",
        "amount": amount,
        "state": state,
        "createdAt": ago(age + 120, now),
    }
    if state != PaymentState.PENDING:
        item["approvedAt"] = ago(age + 90, now)
    if state == PaymentState.REFUNDED:
        item["capturedAt"] = ago(age + 60, now)
    item[STATE_TIME[state]] = ago(age, now) if state != PaymentState.PENDING else item["createdAt"]
    item.update(extra)
    return item


def row(item: dict[str, Any], event_type: str, *, event_id: str | None = None) -> dict[str, Any]:
    """The ledger row ledger_recorder writes for the payment's event of `event_type`."""
    attribute = EVENT_TIME.get(str(event_type), "createdAt")
    event = contract.make_event(
        event_type,
        payment_id=item["paymentId"],
        funding_id=item["fundingId"],
        user_id=item["userId"],
        amount=item["amount"],
        occurred_at=item.get(attribute) or item["createdAt"],
        event_id=event_id or f"{event_type}#{item['paymentId']}",
    )
    return {
        "fundingId": event["fundingId"],
        "recordKey": contract.ledger_record_key(event),
        "eventId": event["eventId"],
        "type": event["type"],
        "occurredAt": event["occurredAt"],
        "paymentId": event["paymentId"],
        "userId": event["userId"],
        "amount": event["amount"],
        "event": json.dumps(event, sort_keys=True),
    }


def ledger_for(payments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event the payments' states imply, once each."""
    return [row(p, event) for p in payments for event, _ in EXPECTED_EVENTS.get(p["state"], ())]


def campaign(state: str = "OPEN", funding: int | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"fundingId": FID, "state": state, "goalAmount": 100_000, "endDate": ago(-86_400)}
    if funding is not None:
        item["fundingAmount"] = funding
    item.update(extra)
    return item


def kinds(audit: CampaignAudit) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(str(f.kind), f.payment_ids, f.event_type) for f in audit.findings]


def run(
    camp: dict[str, Any], payments: list[dict[str, Any]], ledger: list[dict[str, Any]], **kwargs: Any
) -> CampaignAudit:
    return audit_campaign(camp, payments, ledger, now=NOW, horizon_seconds=HORIZON, **kwargs)


# --- the rules -------------------------------------------------------------------------------


def test_balanced_books_have_no_findings_and_a_full_sheet() -> None:
    payments = [
        payment("p1", "CAPTURED", 30_000),
        payment("p2", "CAPTURED", 20_000),
        payment("p3", "REFUNDED", 5_000),
        payment("p4", "DECLINED", 7_000),
        payment("p5", "FAILED", 1_000),
        payment("p6", "CANCELLED", 2_000, authorizationRef="auth-6", voidedAt=ago(OLD)),
        payment("p7", "PENDING", 3_000, age=RECENT),
    ]
    audit = run(campaign(funding=50_000), payments, ledger_for(payments))
    assert audit.findings == ()
    sheet = audit.sheet
    assert (sheet.goal_amount, sheet.funding_amount, sheet.captured_total) == (100_000, 50_000, 50_000)
    assert (sheet.ledger_captured, sheet.ledger_refunded, sheet.ledger_net) == (55_000, 5_000, 50_000)
    assert sheet.balanced and sheet.payments == 7
    assert dict(sheet.payments_by_state) == {
        "CANCELLED": 1,
        "CAPTURED": 2,
        "DECLINED": 1,
        "FAILED": 1,
        "PENDING": 1,
        "REFUNDED": 1,
    }


def test_a_campaign_whose_ledger_misses_a_refund_is_unbalanced() -> None:
    refunded = payment("p1", "REFUNDED", 40_000)
    ledger = [row(refunded, EventType.PAYMENT_CAPTURED)]  # payment.refunded never recorded
    audit = run(
        campaign("FAILED", funding=0, closedAt=ago(OLD), refundsCompletedAt=ago(OLD)), [refunded], ledger
    )
    assert kinds(audit) == [
        ("books_unbalanced", (), None),
        ("ledger_event_missing", ("p1",), "payment.refunded"),
    ]
    unbalanced = audit.findings[0]
    assert "40,000 - 0 = 40,000" in unbalanced.message and "fundingAmount = 0" in unbalanced.message
    assert audit.sheet.ledger_net == 40_000 and not audit.sheet.balanced


def test_an_event_still_in_flight_within_the_horizon_is_counted_not_reported() -> None:
    captured = payment("p1", "CAPTURED", 25_000, age=RECENT)
    refunded = payment("p2", "REFUNDED", 10_000, age=RECENT)
    ledger = [row(refunded, EventType.PAYMENT_CAPTURED)]
    audit = run(campaign(funding=25_000), [captured, refunded], ledger)
    assert audit.findings == ()
    assert (audit.sheet.in_flight_captured, audit.sheet.in_flight_refunded) == (25_000, 10_000)
    assert audit.sheet.ledger_net == 10_000 and audit.sheet.expected_net == 25_000


def test_with_horizon_zero_nothing_is_in_flight() -> None:
    captured = payment("p1", "CAPTURED", 25_000, age=RECENT)
    audit = audit_campaign(campaign(funding=25_000), [captured], [], now=NOW, horizon_seconds=0)
    assert kinds(audit) == [
        ("books_unbalanced", (), None),
        ("ledger_event_missing", ("p1",), "payment.captured"),
    ]


def test_fundingamount_that_is_not_the_sum_of_captured_is_unbalanced_even_with_a_matching_ledger() -> None:
    payments = [payment("p1", "CAPTURED", 10_000)]
    audit = run(campaign(funding=15_000), payments, ledger_for(payments))
    assert kinds(audit) == [("books_unbalanced", (), None)]
    assert "sum of CAPTURED payments = 10,000" in audit.findings[0].message


def test_a_terminal_event_recorded_twice_is_a_duplicate_and_unbalances_the_books() -> None:
    captured = payment("p1", "CAPTURED", 10_000)
    ledger = [
        row(captured, EventType.PAYMENT_CAPTURED),
        row(captured, EventType.PAYMENT_CAPTURED, event_id="e2"),
    ]
    audit = run(campaign(funding=10_000), [captured], ledger)
    assert kinds(audit) == [
        ("books_unbalanced", (), None),
        ("ledger_event_duplicated", ("p1",), "payment.captured"),
    ]
    assert "2 times" in audit.findings[1].message


def test_every_terminal_state_needs_its_own_events() -> None:
    for state, events in EXPECTED_EVENTS.items():
        item = payment("p1", state, 10_000)
        funding = 10_000 if state == PaymentState.CAPTURED else 0
        audit = run(campaign(funding=funding), [item], [])
        missing = [(f.payment_ids, f.event_type) for f in audit.findings if f.kind == "ledger_event_missing"]
        assert missing == [(("p1",), str(event)) for event, _ in events], state


def test_ledger_events_the_payment_contradicts_are_unexpected() -> None:
    declined = payment("p1", "DECLINED", 10_000)
    ledger = [row(declined, EventType.PAYMENT_DECLINED), row(declined, EventType.PAYMENT_CAPTURED)]
    stranger = payment("ghost", "CAPTURED", 5_000)
    ledger.append(row(stranger, EventType.PAYMENT_CAPTURED))
    audit = run(campaign(funding=0), [declined], ledger)
    assert kinds(audit) == [
        ("books_unbalanced", (), None),
        ("ledger_event_unexpected", ("ghost",), "payment.captured"),
        ("ledger_event_unexpected", ("p1",), "payment.captured"),
    ]
    assert "which this campaign does not have" in audit.findings[1].message
    assert "the payment is DECLINED" in audit.findings[2].message


def test_a_failed_event_of_a_payment_the_table_never_held_is_no_finding_once_but_is_twice() -> None:
    """payment_retry announces the give-up of a request whose payment item is missing."""
    ghost = payment("ghost", "FAILED", 5_000)
    once = run(campaign(funding=0), [], [row(ghost, EventType.PAYMENT_FAILED)])
    assert once.findings == ()
    twice = run(
        campaign(funding=0),
        [],
        [row(ghost, EventType.PAYMENT_FAILED), row(ghost, EventType.PAYMENT_FAILED, event_id="x")],
    )
    assert kinds(twice) == [("ledger_event_duplicated", ("ghost",), "payment.failed")]


def test_a_payment_non_terminal_past_the_horizon_is_stuck() -> None:
    payments = [
        payment("old-pending", "PENDING", age=OLD),
        payment("old-approved", "APPROVED", age=OLD),
        payment("new-pending", "PENDING", age=RECENT),
        payment("new-approved", "APPROVED", age=RECENT),
    ]
    audit = run(campaign(funding=0), payments, [])
    assert kinds(audit) == [
        ("payment_stuck", ("old-approved",), None),
        ("payment_stuck", ("old-pending",), None),
    ]
    assert "still APPROVED" in audit.findings[0].message and "horizon 3600 s" in audit.findings[0].message


def test_a_payment_without_a_creation_time_counts_as_old() -> None:
    item = payment("p1", "PENDING")
    del item["createdAt"]
    assert kinds(run(campaign(funding=0), [item], [])) == [("payment_stuck", ("p1",), None)]


def test_an_authorization_never_voided_past_the_horizon_is_held() -> None:
    payments = [
        payment("failed", "FAILED", authorizationRef="a1"),
        payment("cancelled", "CANCELLED", authorizationRef="a2"),
        payment("voided", "CANCELLED", authorizationRef="a3", voidedAt=ago(OLD)),
        payment("captured", "CAPTURED", authorizationRef="a4"),
        payment("refunded", "REFUNDED", authorizationRef="a5"),
        payment("recent", "FAILED", authorizationRef="a6", age=RECENT),
        payment("no-auth", "FAILED"),
    ]
    audit = run(campaign(funding=10_000), payments, ledger_for(payments))
    assert kinds(audit) == [
        ("authorization_held", ("cancelled",), None),
        ("authorization_held", ("failed",), None),
    ]
    assert "authorization a2 never voided" in audit.findings[0].message


def test_an_approved_payment_holding_its_authorization_too_long_is_stuck_and_held() -> None:
    item = payment("p1", "APPROVED", authorizationRef="a1")
    assert kinds(run(campaign(funding=0), [item], [])) == [
        ("payment_stuck", ("p1",), None),
        ("authorization_held", ("p1",), None),
    ]


@pytest.mark.parametrize("state", ["FAILED", "DELETED"])
def test_money_left_captured_on_an_unsuccessful_campaign_after_refunds_were_due(state: str) -> None:
    captured = payment("p1", "CAPTURED", 10_000)
    ledger = ledger_for([captured])
    done = campaign(state, funding=10_000, closedAt=ago(RECENT), refundsCompletedAt=ago(RECENT))
    assert kinds(run(done, [captured], ledger)) == [("refunds_overdue", ("p1",), None)]
    overdue = campaign(state, funding=10_000, closedAt=ago(OLD), deletedAt=ago(OLD))
    audit = run(overdue, [captured], ledger)
    assert kinds(audit) == [("refunds_overdue", ("p1",), None)]
    assert "1 CAPTURED payment(s) worth 10,000" in audit.findings[0].message
    refunding = campaign(state, funding=10_000, closedAt=ago(RECENT), deletedAt=ago(RECENT))
    assert run(refunding, [captured], ledger).findings == ()
    succeeded = campaign("SUCCEEDED", funding=10_000, closedAt=ago(OLD))
    assert run(succeeded, [captured], ledger).findings == ()


def test_a_deleted_campaign_with_leftover_fundingamount_is_overdue_even_without_captured_payments() -> None:
    audit = run(campaign("DELETED", funding=3_000, deletedAt=ago(OLD)), [], [])
    assert [str(f.kind) for f in audit.findings] == ["books_unbalanced", "refunds_overdue"]


def test_a_campaign_whose_money_moved_during_the_read_is_not_judged_on_it() -> None:
    captured = payment("p1", "CAPTURED", 10_000)
    before, after = campaign(funding=0), campaign(funding=10_000)
    torn = run(before, [captured], ledger_for([captured]), campaign_after=after)
    assert torn.findings == () and torn.sheet.moving
    still = run(before, [captured], ledger_for([captured]), campaign_after=campaign(funding=0))
    assert kinds(still) == [("books_unbalanced", (), None)] and not still.sheet.moving


def test_confirmed_keeps_only_what_both_reads_found() -> None:
    first = CampaignAudit(
        run(campaign(funding=0), [], []).sheet,
        (
            Finding(FindingKind.BOOKS_UNBALANCED, FID, "off by 10"),
            Finding(FindingKind.PAYMENT_STUCK, FID, "p1 stuck", ("p1",)),
        ),
    )
    second = CampaignAudit(
        first.sheet,
        (
            Finding(FindingKind.BOOKS_UNBALANCED, FID, "off by 20"),
            Finding(FindingKind.PAYMENT_STUCK, FID, "p2 stuck", ("p2",)),
        ),
    )
    assert [f.message for f in confirmed(first, second).findings] == ["off by 20"]
    with pytest.raises(ValueError, match="two campaigns"):
        confirmed(first, CampaignAudit(run(campaign(funding=0) | {"fundingId": "other"}, [], []).sheet))


def test_finding_counts_name_every_finding_metric_with_zeros() -> None:
    findings = [
        Finding(FindingKind.PAYMENT_STUCK, FID, "a", ("p1",)),
        Finding(FindingKind.PAYMENT_STUCK, FID, "b", ("p2",)),
    ]
    counts = finding_counts(findings)
    assert set(counts) == set(METRIC_OF_KIND.values()) and len(counts) == len(FindingKind)
    assert counts[Metric.PAYMENTS_STUCK] == 2
    assert sum(counts.values()) == 2


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        audit_campaign(campaign(), [], [], now=datetime(2025, 1, 1), horizon_seconds=1)
    with pytest.raises(ValueError, match="horizon_seconds=-1"):
        audit_campaign(campaign(), [], [], now=NOW, horizon_seconds=-1)


def test_parse_time_reads_what_the_platform_writes() -> None:
    assert parse_time("2025-06-01T12:00:00.000Z") == NOW
    assert parse_time("2025-06-01T21:00:00+09:00") == NOW
    assert parse_time("2025-06-01T12:00:00") == NOW
    assert parse_time("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_time("") is None and parse_time(None) is None and parse_time("soon") is None


def test_ledger_rows_are_read_from_the_event_when_a_field_is_missing() -> None:
    captured = payment("p1", "CAPTURED", 10_000)
    bare = {k: v for k, v in row(captured, EventType.PAYMENT_CAPTURED).items() if k not in ("amount", "type")}
    assert run(campaign(funding=10_000), [captured], [bare]).findings == ()


def test_settlement_horizon_is_the_retries_plus_the_sweep_plus_the_margin() -> None:
    horizon = settlement_horizon_seconds(
        retry_max_attempts=5,
        retry_max_delay_seconds=900,
        reconcile_after_seconds=600,
        attempt_seconds=900,
        sweep_period_seconds=300,
    )
    assert horizon == 5 * (900 + 900) + 600 + 300 + 900 == 10_800
    with pytest.raises(ValueError, match="retry_max_attempts=-1"):
        settlement_horizon_seconds(
            retry_max_attempts=-1,
            retry_max_delay_seconds=0,
            reconcile_after_seconds=0,
            attempt_seconds=0,
            sweep_period_seconds=0,
        )
    assert rate_seconds("rate(5 minutes)") == 300 and rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172_800
    with pytest.raises(ValueError, match="not a rate"):
        rate_seconds("cron(0 * * * ? *)")


def test_the_stacks_horizon_comes_from_their_retry_settings() -> None:
    from infra.config import parse
    from infra.payment_chain import settlement_horizon
    from toolchain.project import read_stack_config

    dev = parse("dev", read_stack_config("dev"))
    assert settlement_horizon(dev) == 10_800  # 5 x (5 receives x 180 s + 900 s) + 600 + 300 + 900
    local = parse("local", read_stack_config("local"))
    assert settlement_horizon(local) == 3 * (900 + 4) + 60 + 300 + 900


# --- property tests --------------------------------------------------------------------------

TERMINAL = sorted(str(s) for s in EXPECTED_EVENTS)
payment_specs = st.lists(
    st.tuples(
        st.sampled_from([*TERMINAL, "PENDING", "APPROVED"]),
        st.integers(min_value=1, max_value=1_000_000),
        st.integers(min_value=0, max_value=3 * HORIZON),
    ),
    min_size=1,
    max_size=12,
)


def books_from(
    specs: list[tuple[str, int, int]],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Consistent books: fundingAmount = sum of CAPTURED, every event recorded once, non-terminal recent."""
    payments = [
        payment(
            f"p{i}", state, amount, age=min(age, HORIZON // 2) if state in ("PENDING", "APPROVED") else age
        )
        for i, (state, amount, age) in enumerate(specs)
    ]
    funding = sum(p["amount"] for p in payments if p["state"] == "CAPTURED")
    return campaign(funding=funding), payments, ledger_for(payments)


@settings(max_examples=150, deadline=None)
@given(payment_specs)
def test_consistent_books_always_balance_with_no_findings(specs: list[tuple[str, int, int]]) -> None:
    camp, payments, ledger = books_from(specs)
    audit = run(camp, payments, ledger)
    assert audit.findings == ()
    assert audit.sheet.balanced and audit.sheet.ledger_net == camp["fundingAmount"]


@settings(max_examples=150, deadline=None)
@given(payment_specs, st.data())
def test_a_lost_money_event_is_found_past_the_horizon_and_counted_in_flight_before(
    specs: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    camp, payments, ledger = books_from(specs)
    money = [r for r in ledger if r["type"] in ("payment.captured", "payment.refunded")]
    if not money:
        return
    lost = data.draw(st.sampled_from(money))
    rest = [r for r in ledger if r is not lost]
    owner = next(p for p in payments if p["paymentId"] == lost["paymentId"])
    attribute = "capturedAt" if lost["type"] == "payment.captured" else "refundedAt"
    old = (NOW - parse_time(owner[attribute])).total_seconds() > HORIZON  # type: ignore[operator]
    audit = run(camp, payments, rest)
    sign = 1 if lost["type"] == "payment.captured" else -1
    if old:
        assert kinds(audit) == [
            ("books_unbalanced", (), None),
            ("ledger_event_missing", (owner["paymentId"],), lost["type"]),
        ]
        assert audit.sheet.expected_net == camp["fundingAmount"] - sign * lost["amount"]
    else:
        assert audit.findings == ()
        in_flight = audit.sheet.in_flight_captured if sign == 1 else audit.sheet.in_flight_refunded
        assert in_flight == lost["amount"]


@settings(max_examples=100, deadline=None)
@given(payment_specs, st.data())
def test_a_recorded_event_repeated_is_always_a_duplicate(
    specs: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    camp, payments, ledger = books_from(specs)
    if not ledger:
        return
    repeated = dict(data.draw(st.sampled_from(ledger)))
    repeated["eventId"] = "again"
    audit = run(camp, payments, [*ledger, repeated])
    duplicates = [f for f in audit.findings if f.kind == FindingKind.LEDGER_EVENT_DUPLICATED]
    assert [(f.payment_ids, f.event_type) for f in duplicates] == [
        ((repeated["paymentId"],), repeated["type"])
    ]
    money = repeated["type"] in ("payment.captured", "payment.refunded")
    assert (FindingKind.BOOKS_UNBALANCED in [f.kind for f in audit.findings]) == money


# --- the scheduled function under moto -------------------------------------------------------


def put(table: str, item: dict[str, Any]) -> None:
    aws.client("dynamodb").put_item(TableName=table, Item=aws.to_attributes(item))


def store(camp: dict[str, Any], payments: list[dict[str, Any]], ledger: list[dict[str, Any]]) -> None:
    put("fundings", camp)
    for item in payments:
        put("payments", item)
    for item in ledger:
        put("transactions", item)


def emitted(out: str) -> dict[str, float]:
    """The metrics (name → value) of the EMF documents printed."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"]:
            assert definition["Namespace"] == contract.METRICS_NAMESPACE
            for metric in definition["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = value[0] if isinstance(value, list) else value
        assert document["service"] == books_auditor.SPEC.name
    return values


@pytest.fixture
def auditor(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    monkeypatch.setenv(ENV_SETTLEMENT_HORIZON_SECONDS, str(HORIZON))
    monkeypatch.setattr(books_auditor, "CONFIRM_PAUSE_SECONDS", 0)
    yield platform


def real_now_books(fid: str, state: str = "OPEN", **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "fundingId": fid,
        "state": state,
        "goalAmount": 100_000,
        "endDate": iso(now + timedelta(days=3)),
        **extra,
    }


def test_the_auditor_reports_each_finding_as_a_log_line_and_a_metric(
    auditor: Platform, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    clean = [payment("c1", "CAPTURED", 10_000, now=now) | {"fundingId": "clean"}]
    store(real_now_books("clean", fundingAmount=10_000), clean, ledger_for(clean))
    refunded = payment("r1", "REFUNDED", 40_000, now=now) | {"fundingId": "broken"}
    stuck = payment("s1", "PENDING", 1_000, now=now) | {"fundingId": "broken"}
    store(
        real_now_books(
            "broken", "FAILED", fundingAmount=0, closedAt=ago(OLD, now), refundsCompletedAt=ago(OLD, now)
        ),
        [refunded, stuck],
        [row(refunded, EventType.PAYMENT_CAPTURED)],
    )
    capsys.readouterr()

    summary = books_auditor.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["campaignsAudited"] == 2 and summary["complete"] is True and summary["errors"] == 0
    assert summary["byKind"] == {"BooksUnbalanced": 1, "LedgerEventsMissing": 1, "PaymentsStuck": 1}
    out = capsys.readouterr().out
    metrics = emitted(out)
    assert {name: metrics[name] for name in [str(m) for m in METRIC_OF_KIND.values()]} == {
        "BooksUnbalanced": 1,
        "LedgerEventsMissing": 1,
        "LedgerEventsDuplicated": 0,
        "LedgerEventsUnexpected": 0,
        "PaymentsStuck": 1,
        "AuthorizationsHeld": 0,
        "RefundsOverdue": 0,
    }
    assert metrics["CampaignsAudited"] == 2 and metrics["AuditsCompleted"] == 1
    assert metrics["BooksFindings"] == 3  # the total the one alarm watches
    logged = [r for r in caplog.records if r.name == books_auditor.SPEC.name and hasattr(r, "kind")]
    assert sorted((r.kind, r.fundingId, tuple(getattr(r, "paymentIds", ()))) for r in logged) == [
        ("books_unbalanced", "broken", ()),
        ("ledger_event_missing", "broken", ("r1",)),
        ("payment_stuck", "broken", ("s1",)),
    ]
    assert {r.levelname for r in logged} == {"WARNING"}
    assert "ledger captured - refunded = 40,000 - 0 = 40,000" in logged[0].getMessage()


def test_clean_books_emit_zeros_so_the_alarms_see_data(
    auditor: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    assert summary["findings"] == 0 and summary["complete"] is True
    metrics = emitted(capsys.readouterr().out)
    assert {name: metrics[name] for name in [str(m) for m in METRIC_OF_KIND.values()]} == dict.fromkeys(
        [str(m) for m in METRIC_OF_KIND.values()], 0
    )
    assert metrics["AuditsCompleted"] == 1 and metrics["CampaignsAudited"] == 0
    assert metrics["BooksFindings"] == 0


def test_the_auditor_reads_open_recent_and_unrefunded_campaigns_only(auditor: Platform) -> None:
    now = datetime.now(UTC)
    broken_payment = payment("x", "CAPTURED", 5_000, now=now)  # no ledger row: missing + unbalanced

    def broken(fid: str, state: str, end: datetime, **extra: Any) -> None:
        item = real_now_books(fid, state, fundingAmount=5_000, endDate=iso(end), closedAt=iso(end), **extra)
        store(item, [broken_payment | {"paymentId": f"{fid}-p", "fundingId": fid}], [])

    broken("open-long-past", "OPEN", now - timedelta(days=60))
    broken("succeeded-recent", "SUCCEEDED", now - timedelta(days=2))
    broken("succeeded-old", "SUCCEEDED", now - timedelta(days=30))
    broken("failed-old-unrefunded", "FAILED", now - timedelta(days=30))
    broken("failed-old-refunded", "FAILED", now - timedelta(days=30), refundsCompletedAt=iso(now))
    broken("deleted-future", "DELETED", now + timedelta(days=30), deletedAt=iso(now - timedelta(hours=5)))

    scope = [c["fundingId"] for c in books_auditor.campaigns_in_scope(now)]
    assert scope == ["deleted-future", "failed-old-unrefunded", "open-long-past", "succeeded-recent"]
    summary = books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    assert summary["campaignsAudited"] == 4


def test_a_finding_the_second_read_does_not_confirm_is_not_reported(
    auditor: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger row arrives between the two reads (the ledger and the index lag)."""
    now = datetime.now(UTC)
    late = payment("p1", "CAPTURED", 10_000, now=now) | {"fundingId": "f-late"}
    store(real_now_books("f-late", fundingAmount=10_000), [late], [])
    persistent = payment("p2", "CAPTURED", 10_000, now=now) | {"fundingId": "f-lost"}
    store(real_now_books("f-lost", fundingAmount=10_000), [persistent], [])
    ledger_recorder = boto3.client(
        "dynamodb", region_name=os.environ["AWS_REGION"]
    )  # not the auditor's calls

    def late_row_arrives(_: float) -> None:
        item = aws.to_attributes(row(late, "payment.captured"))
        ledger_recorder.put_item(TableName="transactions", Item=item)

    monkeypatch.setattr(books_auditor, "pause", late_row_arrives)

    summary = books_auditor.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["byKind"] == {"BooksUnbalanced": 1, "LedgerEventsMissing": 1}
    assert summary["findings"] == 2


class ShortContext(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return books_auditor.RESERVED_MILLIS - 1


def test_a_run_out_of_time_stops_and_says_the_audit_is_incomplete(
    auditor: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    store(real_now_books("f-any", fundingAmount=0), [], [])
    summary = books_auditor.handler(SCHEDULE_EVENT, ShortContext())
    assert summary["complete"] is False and summary["campaignsAudited"] == 0
    assert emitted(capsys.readouterr().out)["AuditsCompleted"] == 0


def test_a_campaign_that_cannot_be_read_fails_alone_and_the_run_is_incomplete(
    auditor: Platform, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store(real_now_books("f-ok", fundingAmount=0), [], [])
    store(real_now_books("f-throttled", fundingAmount=0), [], [])
    real = books_auditor.read_books

    def flaky(funding_id: str, campaign: dict[str, Any] | None = None) -> Any:
        if funding_id == "f-throttled":
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real(funding_id, campaign)

    monkeypatch.setattr(books_auditor, "read_books", flaky)
    summary = books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    assert (summary["campaignsAudited"], summary["errors"], summary["complete"]) == (1, 1, False)
    metrics = emitted(capsys.readouterr().out)
    assert metrics["AuditsCompleted"] == 0 and metrics["CampaignsAudited"] == 1


def test_the_auditor_calls_exactly_what_its_access_declares(auditor: Platform) -> None:
    """conftest fails any test whose function calls outside its access; here: nothing declared is unused."""
    now = datetime.now(UTC)
    item = payment("p1", "CAPTURED", 10_000, now=now) | {"fundingId": "f-a"}
    store(real_now_books("f-a", fundingAmount=5), [item], [])  # a finding: the second read runs too
    books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    declared = {(var, action) for var, actions in books_auditor.SPEC.access.items() for action in actions}
    assert auditor.access.used[books_auditor.SPEC.name] == declared
    assert not any(action.split(":")[1].startswith(("Put", "Update", "Delete")) for _, action in declared)


def test_books_the_real_functions_wrote_balance_and_a_lost_refund_row_is_found(
    auditor: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules read the attributes the functions write: a failed campaign, refunded, audits clean."""
    funding_id = auditor.create_campaign(goal=1_000_000)
    for amount in (10_000, 20_000):
        auditor.create_payment(funding_id, amount)
    auditor.run()
    aws.update_item(
        "fundings",
        {"fundingId": funding_id},
        "SET endDate = :end",
        {":end": iso(datetime.now(UTC) - timedelta(minutes=5))},
    )
    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    auditor.run()
    monkeypatch.setenv(ENV_SETTLEMENT_HORIZON_SECONDS, "0")
    clean = books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    assert clean["findings"] == 0, clean
    refund_row = next(r for r in auditor.ledger(funding_id) if r["type"] == "payment.refunded")
    aws.client("dynamodb").delete_item(
        TableName="transactions",
        Key=aws.to_attributes({"fundingId": funding_id, "recordKey": refund_row["recordKey"]}),
    )
    broken = books_auditor.handler(SCHEDULE_EVENT, FakeContext())
    assert broken["byKind"] == {"BooksUnbalanced": 1, "LedgerEventsMissing": 1}


# --- make audit against moto tables ----------------------------------------------------------

TABLE_ARGS = ["--fundings", "fundings", "--payments", "payments", "--transactions", "transactions"]


def test_make_audit_prints_each_campaigns_balance_sheet_and_exits_0_when_clean(
    auditor: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    payments = [
        payment("c1", "CAPTURED", 30_000, now=now) | {"fundingId": "f-clean"},
        payment("r1", "REFUNDED", 5_000, now=now) | {"fundingId": "f-clean"},
        payment("d1", "DECLINED", 7_000, now=now) | {"fundingId": "f-clean"},
    ]
    store(real_now_books("f-clean", fundingAmount=30_000), payments, ledger_for(payments))

    status = make_audit.main([*TABLE_ARGS, "--region", "us-east-1", "--horizon", "0"], pause=lambda _: None)

    out, err = capsys.readouterr()
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "books of tables fundings, payments, transactions (horizon 0 s)"
    header = lines[2].split()
    assert header[:3] == ["campaign", "state", "goal"] and "fundingAmount" in header
    [sheet] = [line for line in lines if line.startswith("f-clean")]
    assert re.split(r"\s{2,}", sheet) == [
        "f-clean",
        "OPEN",
        "100,000",
        "30,000",
        "30,000",
        "35,000",
        "5,000",
        "0",
        "0",
        "CAPTURED 1, DECLINED 1, REFUNDED 1",
    ]
    assert lines[-1] == "the books balance: 1 campaign(s), 3 payment(s), no findings"
    assert "reading payments (payments): 3 items" in err


def test_make_audit_lists_the_findings_and_exits_1(
    auditor: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    refunded = payment("r1", "REFUNDED", 40_000, now=now) | {"fundingId": "f-bad"}
    store(
        real_now_books(
            "f-bad", "FAILED", fundingAmount=0, closedAt=ago(OLD, now), refundsCompletedAt=ago(OLD, now)
        ),
        [refunded],
        [row(refunded, EventType.PAYMENT_CAPTURED)],
    )
    orphan = payment("o1", "CAPTURED", 1_000, now=now) | {"fundingId": "f-gone"}
    store(real_now_books("f-ok", fundingAmount=0), [orphan], [])
    pauses: list[float] = []

    status = make_audit.main([*TABLE_ARGS, "--horizon", "60"], pause=pauses.append)

    out, err = capsys.readouterr()
    assert status == 1
    assert pauses == [make_audit.CONFIRM_PAUSE_SECONDS] and "re-reading 2 campaign(s)" in err
    assert "findings (4):" in out
    assert "  [ledger_event_missing] payment r1 is REFUNDED" in out
    assert "  [books_unbalanced] campaign f-bad's books do not balance: ledger captured - refunded = " in out
    # Payments whose campaign item is missing are audited too.
    assert re.search(rf"^f-gone\s+{re.escape(make_audit.NO_CAMPAIGN)}\s", out, re.MULTILINE)
    assert out.splitlines()[-1] == "4 finding(s) in 2 of 3 campaign(s), 2 payment(s)"


def test_make_audit_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make_audit.main(["--fundings", "f"]) == 2
    assert "pass all three tables" in capsys.readouterr().err
    assert make_audit.main(TABLE_ARGS) == 2
    assert "--stack <name>" in capsys.readouterr().err
    assert make_audit.main([*TABLE_ARGS, "--horizon", "-5"]) == 2
    assert "--horizon -5" in capsys.readouterr().err
    from toolchain.embedded import token

    def not_running() -> dict[str, Any]:
        raise token.NotRunning("no local system is running: start it with `make run`")

    monkeypatch.setattr(token, "read_state", not_running)
    assert make_audit.main([]) == 2
    assert "no local system is running" in capsys.readouterr().err


def test_make_audit_finds_the_local_systems_tables_and_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolchain.embedded import emulator, token

    state = {
        "emulator": "http://127.0.0.1:4566",
        "region": "ap-northeast-2",
        "deployment": {
            "functions": {
                "books-auditor": {
                    "environment": {
                        "FUNDINGS_TABLE": "fundings-1",
                        "PAYMENTS_TABLE": "payments-2",
                        "TRANSACTIONS_TABLE": "transactions-3",
                        ENV_SETTLEMENT_HORIZON_SECONDS: "4512",
                    }
                }
            }
        },
    }
    monkeypatch.setattr(token, "read_state", lambda: state)
    monkeypatch.setattr(emulator, "emulator_client", lambda service, url, region: (service, url, region))
    target = make_audit.target_from(make_audit.parser().parse_args([]))
    assert (target.fundings, target.payments, target.transactions) == (
        "fundings-1",
        "payments-2",
        "transactions-3",
    )
    assert target.horizon_seconds == 4512
    assert target.dynamodb == ("dynamodb", "http://127.0.0.1:4566", "ap-northeast-2")
    assert make_audit.target_from(make_audit.parser().parse_args(["--horizon", "0"])).horizon_seconds == 0
