"""End to end on the embedded system: the demo story and the DLQ path (the fault run with every
knob on is tests/e2e/test_fault_run.py).

Each test starts the real system (`toolchain.embedded.system.LocalSystem`: the emulator, the program
deployed onto it, the functions from their archives, the API) on free ports of 127.0.0.1 and
stops it afterwards. Bounded in time: every wait has a deadline.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared.contract import (
    FUNDINGS_TABLE,
    PAYMENTS_TABLE,
    TRANSACTIONS_TABLE,
    EventType,
)
from local.demo import Api, campaign_body, tell
from tests.e2e.local import TERMINAL, scan, start_system, wait_for_terminal
from toolchain.embedded.system import LocalSystem
from toolchain.embedded.token import issue_token

pytestmark = pytest.mark.e2e


def assert_invariants(system: LocalSystem, payment_ids: set[str]) -> dict[str, Any]:
    """DESIGN §3, checked from the tables and the ledger."""
    payments = {
        p["paymentId"]: p for p in scan(system, PAYMENTS_TABLE.logical_name) if p["paymentId"] in payment_ids
    }
    campaigns = {c["fundingId"]: c for c in scan(system, FUNDINGS_TABLE.logical_name)}
    ledger = scan(system, TRANSACTIONS_TABLE.logical_name)

    # 1. every accepted payment reached a terminal state
    assert set(payments) == payment_ids
    not_terminal = {pid: p["state"] for pid, p in payments.items() if p["state"] not in TERMINAL}
    assert not not_terminal, f"payments not terminal: {not_terminal}"

    # 5. every event recorded once
    event_ids = Counter(str(item["eventId"]) for item in ledger)
    assert max(event_ids.values()) == 1

    captures = Counter(
        str(item["paymentId"]) for item in ledger if item["type"] == str(EventType.PAYMENT_CAPTURED)
    )
    # 2. captured at most once, and totals equal the ledger
    assert all(count == 1 for count in captures.values()), "a payment was captured twice"
    by_campaign: dict[str, int] = defaultdict(int)
    for payment in payments.values():
        if payment["state"] == "CAPTURED":
            assert captures[payment["paymentId"]] == 1, f"capture of {payment['paymentId']} not in the ledger"
            by_campaign[payment["fundingId"]] += int(payment["amount"])
    ledger_totals: dict[str, int] = defaultdict(int)
    for item in ledger:
        if item["type"] == str(EventType.PAYMENT_CAPTURED):
            ledger_totals[str(item["fundingId"])] += int(item["amount"])
    for funding_id in {p["fundingId"] for p in payments.values()}:
        campaign = campaigns[funding_id]
        assert int(campaign["fundingAmount"]) == by_campaign[funding_id] == ledger_totals[funding_id]
        # 3. SUCCEEDED exactly once, when the goal was reached
        goal_events = [
            i
            for i in ledger
            if i["fundingId"] == funding_id and i["type"] == str(EventType.FUNDING_GOAL_REACHED)
        ]
        if int(campaign["fundingAmount"]) >= int(campaign["goalAmount"]):
            assert campaign["state"] == "SUCCEEDED"
            assert len(goal_events) == 1
        else:
            assert campaign["state"] == "OPEN" and goal_events == []
    return {"payments": payments, "campaigns": campaigns, "ledger": ledger}


def test_the_demo_story(tmp_path: Path) -> None:
    system = start_system(
        tmp_path,
        environment_overrides={"PG_TRANSIENT_FAILURE_RATE": "0.3", "PG_DECLINE_RATE": "0.1", "PG_SEED": "7"},
    )
    try:
        story = tell(system.state(), timeout=120)
        states = story.states()
        assert story.campaign["state"] == "SUCCEEDED"
        captured = sum(int(p["amount"]) for p in story.payments.values() if p["state"] == "CAPTURED")
        assert int(story.campaign["fundingAmount"]) == captured >= int(story.campaign["goalAmount"])
        assert states["CANCELLED"] >= 1, f"the late payment was not cancelled: {states}"
        assert sum(story.stats["recordsRetried"].values()) >= 1, "no transient gateway error was retried"
        types = Counter(str(item["type"]) for item in story.ledger)
        assert types[str(EventType.FUNDING_GOAL_REACHED)] == 1
        assert types[str(EventType.PAYMENT_CANCELLED)] == states["CANCELLED"]
        assert story.emails_sent >= 1
        assert_invariants(system, set(story.payments))
    finally:
        system.stop()


def test_gateway_down_ends_in_failed_and_an_email(tmp_path: Path) -> None:
    system = start_system(
        tmp_path, environment_overrides={"PG_TRANSIENT_FAILURE_RATE": "1.0"}, time_scale=300.0
    )
    try:
        state = system.state()
        api = Api(system.api_url)
        creator = issue_token("creator", state, system.options.workdir / "users.json")
        backer = issue_token("backer", state, system.options.workdir / "users.json")
        status, body = api.call(
            "POST",
            "/api/funding",
            creator,
            campaign_body("gateway down", "dlq path", 100_000),
        )
        assert status == 201, body
        status, body = api.call(
            "POST",
            "/api/payments",
            backer,
            {
                "status": 1,
                "payload": {"fundingId": body["fundingId"], "amount": 10_000, "paymentMethod": "card"},
            },
        )
        assert status in (201, 202), body
        payment_id = body["paymentId"]
        wait_for_terminal(system, {payment_id}, timeout=300)
        status, body = api.call("GET", f"/api/payments/{payment_id}", backer)
        assert body["payload"]["state"] == "FAILED"
        stats = system.stats()
        retried = sum(
            count for name, count in stats["invocations"].items() if name.startswith("payment-retry")
        )
        assert retried >= 1, f"the DLQ was never consumed by payment_retry: {stats}"
        recorded = time.monotonic() + 30  # the ledger records the event shortly after the state
        while not [
            i
            for i in scan(system, TRANSACTIONS_TABLE.logical_name)
            if i["paymentId"] == payment_id and i["type"] == "payment.failed"
        ]:
            assert time.monotonic() < recorded, "payment.failed never reached the ledger"
            time.sleep(1)
        ses = system.client("ses")
        assert int(ses.get_send_quota()["SentLast24Hours"]) >= 1
    finally:
        system.stop()
