"""campaign_closer and reconciler: deadlines, refunds, stale payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdas import campaign_closer, reconciler
from lambdas.shared import aws
from tests.lambdas.conftest import FakeContext, Platform, iso

SCHEDULE_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def _past_deadline(platform: Platform, funding_id: str) -> None:
    aws.update_item(
        "fundings",
        {"fundingId": funding_id},
        "SET endDate = :end",
        {":end": iso(datetime.now(UTC) - timedelta(minutes=5))},
    )


def test_deadline_fails_the_campaign_and_refunds_every_captured_payment(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    payments = [platform.create_payment(funding_id, amount) for amount in (10_000, 20_000, 30_000)]
    platform.run()
    assert platform.campaign(funding_id)["fundingAmount"] == 60_000
    _past_deadline(platform, funding_id)

    summary = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    assert summary == {"succeeded": 0, "failed": 1, "refunded": 3, "errors": 0}
    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "FAILED" and campaign["fundingAmount"] == 0 and campaign["refundsCompletedAt"]
    assert {platform.payment(p["paymentId"])["state"] for p in payments} == {"REFUNDED"}
    assert sorted(e["amount"] for e in platform.published("payment.refunded")) == [10_000, 20_000, 30_000]
    assert len(platform.published("funding.failed", fundingId=funding_id)) == 1
    assert platform.gateway.count("refund") == 3

    again = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())  # the next tick does nothing
    assert again == {"succeeded": 0, "failed": 0, "refunded": 0, "errors": 0}
    assert platform.gateway.count("refund") == 3
    platform.run()
    ledger_types = [i["type"] for i in platform.ledger(funding_id)]
    assert ledger_types.count("payment.refunded") == 3 and ledger_types.count("funding.failed") == 1


def test_refund_outage_is_finished_by_a_later_run(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    payments = [platform.create_payment(funding_id, 10_000) for _ in range(2)]
    platform.run()
    _past_deadline(platform, funding_id)
    platform.gateway.always_fail = True  # the gateway is down during the whole first run

    first = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    assert first["failed"] == 1 and first["refunded"] == 0
    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "FAILED"
    assert campaign["fundingAmount"] == 20_000 == platform.captured_sum(funding_id)
    assert "refundsCompletedAt" not in campaign
    assert len(platform.published("funding.failed")) == 1  # the close is announced regardless

    platform.gateway.always_fail = False
    second = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    assert second["refunded"] == 2 and second["failed"] == 0
    assert {platform.payment(p["paymentId"])["state"] for p in payments} == {"REFUNDED"}
    assert platform.campaign(funding_id)["fundingAmount"] == 0
    assert len(platform.published("funding.failed")) == 1


def test_deadline_with_goal_met_succeeds_without_refunds(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=10_000, funding_amount=12_000, end_date="2020-01-01")

    summary = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["succeeded"] == 1 and summary["refunded"] == 0
    assert platform.campaign(funding_id)["state"] == "SUCCEEDED"
    assert len(platform.published("funding.succeeded", fundingId=funding_id)) == 1


def test_campaign_open_until_the_end_of_its_date_only_end_day(platform: Platform) -> None:
    today = datetime.now(UTC).date().isoformat()
    open_today = platform.create_campaign(end_date=today)
    ended_yesterday = platform.create_campaign(
        end_date=(datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    )

    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    assert platform.campaign(open_today)["state"] == "OPEN"
    assert platform.campaign(ended_yesterday)["state"] == "FAILED"


def test_payment_approved_after_the_deadline_close_is_voided(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    late = platform.create_payment(funding_id, 10_000)
    platform.run(functions=("payment_processor",))  # approved, not yet captured
    _past_deadline(platform, funding_id)
    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    platform.run()

    assert platform.payment(late["paymentId"])["state"] == "CANCELLED"
    assert platform.campaign(funding_id)["fundingAmount"] == 0


def test_reconciler_republishes_stale_pending_without_double_capture(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    old = iso(datetime.now(UTC) - timedelta(hours=1))
    stale = platform.create_payment(funding_id, 10_000, created_at=old)  # its request is still queued too
    lost = platform.create_payment(
        funding_id, 7_000, created_at=old, publish=False
    )  # request never published
    fresh = platform.create_payment(funding_id, 5_000, publish=False)  # too young to touch

    first = reconciler.handler(SCHEDULE_EVENT, FakeContext())
    second = reconciler.handler(SCHEDULE_EVENT, FakeContext())  # a tick later: already claimed
    assert first == {"republished": 2, "skipped": 0}
    assert second["republished"] == 0

    platform.run()

    assert platform.payment(stale["paymentId"])["state"] == "CAPTURED"
    assert platform.payment(lost["paymentId"])["state"] == "CAPTURED"
    assert platform.payment(fresh["paymentId"])["state"] == "PENDING"
    assert platform.campaign(funding_id)["fundingAmount"] == 17_000 == platform.captured_sum(funding_id)
    captured = platform.published("payment.captured", paymentId=stale["paymentId"])
    assert len({e["eventId"] for e in captured}) == 1
    ledger = [i for i in platform.ledger(funding_id) if i["type"] == "payment.captured"]
    assert len(ledger) == 2
    assert reconciler.handler(SCHEDULE_EVENT, FakeContext())["republished"] == 0
