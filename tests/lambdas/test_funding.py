"""funding_update and transaction_check: capture once, count exactly, close once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas import campaign_closer, funding_update, reconciler
from lambdas.shared import aws, campaigns
from tests.lambdas.conftest import FakeContext, Platform, iso

FUNDING_QUEUE = "funding-update"


def _approve_all(platform: Platform) -> None:
    """Run the processor only, so approved events wait in the funding-update queue."""
    platform.run(functions=("payment_processor",))


def _assert_books_balance(platform: Platform, funding_id: str) -> None:
    """fundingAmount == sum(CAPTURED) on the table and from the ledger's captured - refunded."""
    campaign = platform.campaign(funding_id)
    assert campaign["fundingAmount"] == platform.captured_sum(funding_id)
    ledger = platform.ledger(funding_id)
    by_type = lambda t: sum(i["amount"] for i in ledger if i["type"] == t)  # noqa: E731
    assert campaign["fundingAmount"] == by_type("payment.captured") - by_type("payment.refunded")


def test_same_message_delivered_twice_captures_once(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 40_000)
    _approve_all(platform)
    records = platform.receive(FUNDING_QUEUE)
    assert len(records) == 1
    duplicate = dict(records[0], messageId="dup-" + records[0]["messageId"])

    result = funding_update.handler({"Records": [records[0], duplicate]}, None)  # both in one batch
    assert result["batchItemFailures"] == []
    result = funding_update.handler({"Records": [records[0]]}, None)  # and again later
    assert result["batchItemFailures"] == []
    platform.run()

    assert platform.payment(payment["paymentId"])["state"] == "CAPTURED"
    assert platform.campaign(funding_id)["fundingAmount"] == 40_000
    captured = platform.published("payment.captured")
    assert {e["eventId"] for e in captured} == {captured[0]["eventId"]}  # re-published, same event
    assert len([i for i in platform.ledger(funding_id) if i["type"] == "payment.captured"]) == 1
    _assert_books_balance(platform, funding_id)


def test_crash_after_capture_before_publish_is_completed_by_the_retry(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign(goal=50_000)
    first = platform.create_payment(funding_id, 20_000)
    crossing = platform.create_payment(funding_id, 30_000)
    _approve_all(platform)
    real_publish, real_publish_all = funding_update.publish, funding_update.publish_all

    def crash(events: Any) -> Any:
        raise RuntimeError("simulated crash after the transaction committed")

    monkeypatch.setattr(funding_update, "publish", crash)
    monkeypatch.setattr(funding_update, "publish_all", crash)
    result = platform.invoke_batch("funding_update", platform.receive(FUNDING_QUEUE))
    assert len(result["batchItemFailures"]) == 2
    assert platform.campaign(funding_id)["state"] == "SUCCEEDED"  # the capture itself happened

    monkeypatch.setattr(funding_update, "publish", real_publish)
    monkeypatch.setattr(funding_update, "publish_all", real_publish_all)
    platform.run()

    assert {platform.payment(p["paymentId"])["state"] for p in (first, crossing)} == {"CAPTURED"}
    assert platform.campaign(funding_id)["fundingAmount"] == 50_000
    assert len(platform.published("payment.captured")) == 2
    goal = platform.published("funding.goal_reached")
    assert len(goal) == 1 and goal[0]["paymentId"] == crossing["paymentId"]
    assert platform.campaign(funding_id)["goalPublishedAt"]
    _assert_books_balance(platform, funding_id)


def test_one_campaign_write_per_batch(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    funding_id = platform.create_campaign(goal=10_000_000)
    for _ in range(10):
        platform.create_payment(funding_id, 10_000)
    _approve_all(platform)
    calls: list[list[str]] = []
    reads: list[dict[str, int]] = []
    ddb = aws.client("dynamodb")
    real, real_read = ddb.transact_write_items, ddb.batch_get_item

    def spy(**kwargs: Any) -> Any:
        calls.append([next(iter(item.values()))["TableName"] for item in kwargs["TransactItems"]])
        return real(**kwargs)

    def read_spy(**kwargs: Any) -> Any:
        reads.append({table: len(request["Keys"]) for table, request in kwargs["RequestItems"].items()})
        return real_read(**kwargs)

    def get_spy(**kwargs: Any) -> Any:
        raise AssertionError(f"a single-item read on the hot path: {kwargs['TableName']}")

    with pytest.MonkeyPatch.context() as spies:
        spies.setattr(ddb, "transact_write_items", spy)
        spies.setattr(ddb, "batch_get_item", read_spy)
        spies.setattr(ddb, "get_item", get_spy)
        platform.pump("funding_update", max_messages=10)

    # One read of the campaign and its ten payments; one capture transaction (the campaign once +
    # ten payments); one that clears the ten payments' `owed` once their payment.captured went
    # out: no per-payment call.
    assert reads == [{"fundings": 1, "payments": 10}]
    assert calls == [["fundings"] + ["payments"] * 10, ["payments"] * 10]
    assert platform.campaign(funding_id)["fundingAmount"] == 100_000
    assert platform.owed() == []
    assert platform.campaign(funding_id)["fundingAmount"] == 100_000
    assert platform.owed() == []


def test_large_batch_is_chunked_to_the_transaction_limit(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign(goal=10_000_000)
    payments = [
        platform.create_payment(funding_id, 1_000, state="APPROVED", publish=False) for _ in range(150)
    ]
    records = [
        {
            "messageId": f"m-{i}",
            "receiptHandle": "r",
            "body": json.dumps(
                {
                    "eventId": f"e-{i}",
                    "type": "payment.approved",
                    "occurredAt": p["createdAt"],
                    "paymentId": p["paymentId"],
                    "fundingId": funding_id,
                    "amount": p["amount"],
                }
            ),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }
        for i, p in enumerate(payments)
    ]
    sizes: list[int] = []
    real = aws.client("dynamodb").transact_write_items
    monkeypatch.setattr(
        aws.client("dynamodb"),
        "transact_write_items",
        lambda **kw: (sizes.append(len(kw["TransactItems"])), real(**kw))[1],
    )
    assert funding_update.handler({"Records": records}, None)["batchItemFailures"] == []
    assert sizes == [100, 52, 100, 50]  # captures: 1 + 99 and 1 + 51; then 150 `owed` cleared
    assert platform.campaign(funding_id)["fundingAmount"] == 150_000
    assert platform.captured_sum(funding_id) == 150_000


def test_goal_crossed_inside_one_batch_closes_once_and_cancels_the_rest(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=50_000)
    payments = [platform.create_payment(funding_id, 20_000) for _ in range(4)]
    platform.run()

    states = [platform.payment(p["paymentId"])["state"] for p in payments]
    assert states.count("CAPTURED") == 3 and states.count("CANCELLED") == 1
    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "SUCCEEDED" and campaign["fundingAmount"] == 60_000
    assert campaign["goalReachedAt"]
    assert len(platform.published("funding.goal_reached")) == 1
    cancelled = next(p for p in payments if platform.payment(p["paymentId"])["state"] == "CANCELLED")
    assert platform.gateway.count("void", cancelled["paymentId"]) == 1
    _assert_books_balance(platform, funding_id)


def test_two_batches_racing_across_the_goal(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    funding_id = platform.create_campaign(goal=100_000, funding_amount=0)
    batch_a = [platform.create_payment(funding_id, 20_000) for _ in range(3)]  # 60,000
    _approve_all(platform)
    records_a = platform.receive(FUNDING_QUEUE)
    batch_b = [platform.create_payment(funding_id, 25_000) for _ in range(2)]  # 50,000
    _approve_all(platform)
    records_b = platform.receive(FUNDING_QUEUE)
    assert len(records_a) == 3 and len(records_b) == 2

    real = funding_update._capture_transaction
    raced: list[bool] = []

    def interleaved(*args: Any, **kwargs: Any) -> None:
        if not raced:  # batch B commits between batch A's read and its write
            raced.append(True)
            assert platform.invoke_batch("funding_update", records_b)["batchItemFailures"] == []
        real(*args, **kwargs)

    monkeypatch.setattr(funding_update, "_capture_transaction", interleaved)
    result = platform.invoke_batch("funding_update", records_a)
    assert result["batchItemFailures"] == []
    platform.run()

    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "SUCCEEDED"
    # B (50,000) first, then A's first two (40,000 → 90,000) and third (→ 110,000) crosses.
    assert campaign["fundingAmount"] == 110_000
    assert campaign["goalPaymentId"] == batch_a[2]["paymentId"]
    assert len(platform.published("funding.goal_reached")) == 1
    assert {platform.payment(p["paymentId"])["state"] for p in batch_a + batch_b} == {"CAPTURED"}
    _assert_books_balance(platform, funding_id)


def test_racing_batches_where_the_other_one_crosses(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign(goal=60_000)
    batch_a = [platform.create_payment(funding_id, 20_000) for _ in range(2)]
    _approve_all(platform)
    records_a = platform.receive(FUNDING_QUEUE)
    batch_b = [platform.create_payment(funding_id, 30_000) for _ in range(2)]
    _approve_all(platform)
    records_b = platform.receive(FUNDING_QUEUE)
    real = funding_update._capture_transaction
    raced: list[bool] = []

    def interleaved(*args: Any, **kwargs: Any) -> None:
        if not raced:
            raced.append(True)
            platform.invoke_batch("funding_update", records_b)  # B alone reaches the goal
        real(*args, **kwargs)

    monkeypatch.setattr(funding_update, "_capture_transaction", interleaved)
    platform.invoke_batch("funding_update", records_a)
    platform.run()

    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "SUCCEEDED" and campaign["fundingAmount"] == 60_000
    assert campaign["goalPaymentId"] == batch_b[1]["paymentId"]
    assert len(platform.published("funding.goal_reached")) == 1
    assert {platform.payment(p["paymentId"])["state"] for p in batch_a} == {"CANCELLED"}
    assert all(platform.payment(p["paymentId"])["voidedAt"] for p in batch_a)
    _assert_books_balance(platform, funding_id)


def test_payment_for_a_closed_campaign_is_voided_and_cancelled(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=10_000, funding_amount=10_000, state="SUCCEEDED")
    payment = platform.create_payment(funding_id, 5_000)

    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "CANCELLED" and stored["voidedAt"]
    assert platform.gateway.count("void", payment["paymentId"]) == 1
    assert platform.campaign(funding_id)["fundingAmount"] == 10_000
    assert sorted(e["type"] for e in platform.published(paymentId=payment["paymentId"])) == [
        "payment.approved",
        "payment.cancel_requested",
        "payment.cancelled",
        "payment.requested",
    ]
    assert platform.published("payment.captured") == []


def test_deleted_campaign_payment_is_cancelled_and_void_retried(platform: Platform) -> None:
    funding_id = platform.create_campaign(state="DELETED")
    payment = platform.create_payment(funding_id, 5_000)
    platform.run(functions=("payment_processor", "funding_update"))
    platform.gateway.fail_next = 1  # the void fails once: the record is retried, not lost

    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "CANCELLED" and stored["voidedAt"]
    assert platform.gateway.count("void", payment["paymentId"]) == 2
    # Announced at once (the state is final), re-sent once the void went through: one event, one eventId.
    assert len({e["eventId"] for e in platform.published("payment.cancelled")}) == 1


def test_poison_record_fails_alone(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    platform.create_payment(funding_id, 10_000)
    _approve_all(platform)
    records = platform.receive(FUNDING_QUEUE)
    poison = dict(records[0], messageId="poison", body='{"type": "payment.approved"}')

    result = funding_update.handler({"Records": [*records, poison]}, None)

    assert result["batchItemFailures"] == [{"itemIdentifier": "poison"}]
    assert platform.campaign(funding_id)["fundingAmount"] == 10_000


# --- capture only while now ≤ endDate (issue 13 item 5) ---------------------------------------


def test_capture_after_the_deadline_is_refused_and_the_payment_cancelled(platform: Platform) -> None:
    """The deadline passed but the closer has not run yet: the campaign is still OPEN."""
    funding_id = platform.create_campaign(
        goal=1_000_000, end_date=iso(datetime.now(UTC) - timedelta(minutes=1))
    )
    payment = platform.create_payment(funding_id, 10_000)

    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "CANCELLED" and stored["voidedAt"] and "owed" not in stored
    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "OPEN" and campaign["fundingAmount"] == 0
    assert platform.published("payment.captured") == []
    (requested,) = platform.published("payment.cancel_requested")
    assert requested["reason"] == "the campaign's deadline had passed"
    assert platform.gateway_record(payment["paymentId"])["voids"] == 1
    _assert_books_balance(platform, funding_id)


def test_deadline_passing_between_the_read_and_the_commit_refuses_the_capture(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction itself holds the deadline: a stale 'still open' decision cannot capture."""
    funding_id = platform.create_campaign(
        goal=1_000_000, end_date=iso(datetime.now(UTC) - timedelta(seconds=1))
    )
    payment = platform.create_payment(funding_id, 10_000)
    _approve_all(platform)
    real = funding_update.deadline_passed
    stale = [True]

    def read_before_the_deadline(campaign: dict[str, Any], moment: datetime) -> bool:
        if stale:
            stale.pop()
            return False  # as if read a moment before endDate
        return real(campaign, moment)

    reasons: list[list[str]] = []
    transact = aws.client("dynamodb").transact_write_items

    def spy(**kwargs: Any) -> Any:
        try:
            return transact(**kwargs)
        except Exception as exc:
            reasons.append(aws.cancellation_codes(exc))
            raise

    monkeypatch.setattr(funding_update, "deadline_passed", read_before_the_deadline)
    monkeypatch.setattr(aws.client("dynamodb"), "transact_write_items", spy)
    platform.run()

    assert reasons and reasons[0][0] == "ConditionalCheckFailed"  # the campaign item refused it
    assert platform.payment(payment["paymentId"])["state"] == "CANCELLED"
    assert platform.campaign(funding_id)["fundingAmount"] == 0


def test_a_date_only_end_date_counts_the_whole_day(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    ends_today = platform.create_campaign(end_date=today.isoformat())
    ended_yesterday = platform.create_campaign(end_date=(today - timedelta(days=1)).isoformat())
    on_time = platform.create_payment(ends_today, 10_000)
    late = platform.create_payment(ended_yesterday, 10_000)

    platform.run()

    assert platform.payment(on_time["paymentId"])["state"] == "CAPTURED"
    assert platform.payment(late["paymentId"])["state"] == "CANCELLED"
    assert platform.campaign(ended_yesterday)["fundingAmount"] == 0


def test_the_deadline_condition_is_written_in_the_stored_format() -> None:
    now = datetime(2025, 3, 31, 12, 0, 0, 123_000, tzinfo=UTC)
    assert campaigns.open_until_condition({"endDate": "2025-04-01T00:00:00.000Z"}, now) == (
        "endDate >= :openUntil",
        {":openUntil": "2025-03-31T12:00:00.123Z"},
    )
    assert campaigns.open_until_condition({"endDate": "2025-03-31"}, now) == (
        "endDate >= :openUntil",
        {":openUntil": "2025-03-31"},
    )
    # Any other spelling is pinned to the value read; deadline_passed decided on it in Python.
    assert campaigns.open_until_condition({"endDate": "2025-04-01T00:00:00+00:00"}, now) == (
        "endDate = :openUntil",
        {":openUntil": "2025-04-01T00:00:00+00:00"},
    )
    assert campaigns.open_until_condition({}, now) is None
    assert campaigns.deadline_passed({"endDate": "2025-03-30"}, now)
    assert not campaigns.deadline_passed({"endDate": "2025-03-31"}, now)
    assert campaigns.deadline_passed({"endDate": "2025-03-31T11:59:59.999Z"}, now)


# --- events owed after a committed capture are never lost (issue 13 items 3 and 11) ---------------


def _sns_outage(monkeypatch: pytest.MonkeyPatch, lost_types: set[str]) -> None:
    """SNS refuses every event of `lost_types` (PublishBatch entries and Publish calls)."""
    sns = aws.client("sns")
    real_batch, real_publish = sns.publish_batch, sns.publish

    def publish_batch(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["PublishBatchRequestEntries"]
        lost = [e for e in entries if json.loads(e["Message"])["type"] in lost_types]
        sent = [e for e in entries if e not in lost]
        if sent:
            real_batch(TopicArn=kwargs["TopicArn"], PublishBatchRequestEntries=sent)
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "InternalError"} for e in lost]}

    def publish(**kwargs: Any) -> dict[str, Any]:
        if json.loads(kwargs["Message"])["type"] in lost_types:
            raise RuntimeError("SNS outage")
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish_batch", publish_batch)
    monkeypatch.setattr(sns, "publish", publish)


def _records_exhausted_into_the_dlq(platform: Platform) -> None:
    """Every delivery failed; after maxReceiveCount SQS moved them to a DLQ nobody reads."""
    platform.sqs.purge_queue(QueueUrl=platform.queue_urls[FUNDING_QUEUE])


def _age(platform: Platform, payment_id: str, **fields: str) -> None:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    aws.update_item(
        "payments",
        {"paymentId": payment_id},
        "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
        values,
        names=names,
    )


def test_capture_events_lost_in_an_sns_outage_are_owed_and_the_sweeper_sends_them(
    platform: Platform,
) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    payments = [platform.create_payment(funding_id, 10_000 + i) for i in range(3)]
    _approve_all(platform)
    with pytest.MonkeyPatch.context() as outage:
        _sns_outage(outage, {"payment.captured"})
        for _ in range(3):
            result = platform.invoke_batch("funding_update", platform.receive(FUNDING_QUEUE))
            assert len(result["batchItemFailures"]) == 3 or not result["batchItemFailures"]
        _records_exhausted_into_the_dlq(platform)

    stored = [platform.payment(p["paymentId"]) for p in payments]
    assert {p["state"] for p in stored} == {"CAPTURED"} and {p["owed"] for p in stored} == {"CAPTURED"}
    assert platform.published("payment.captured") == []
    hour_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    for p in stored:
        _age(platform, p["paymentId"], owedSince=hour_ago)

    summary = reconciler.handler({}, FakeContext())

    assert summary["owedSettled"] == 3
    captured = platform.published("payment.captured")
    assert sorted(e["paymentId"] for e in captured) == sorted(p["paymentId"] for p in payments)
    assert {e["occurredAt"] for e in captured} == {p["capturedAt"] for p in stored}
    assert platform.owed() == []
    platform.run()
    _assert_books_balance(platform, funding_id)


def test_a_goal_reached_event_never_published_is_sent_by_the_closer(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=30_000)
    first = platform.create_payment(funding_id, 20_000)
    crossing = platform.create_payment(funding_id, 20_000)
    _approve_all(platform)
    with pytest.MonkeyPatch.context() as outage:
        _sns_outage(outage, {"funding.goal_reached"})
        platform.invoke_batch("funding_update", platform.receive(FUNDING_QUEUE))
        _records_exhausted_into_the_dlq(platform)
    campaign = platform.campaign(funding_id)
    assert campaign["state"] == "SUCCEEDED" and campaign["goalPaymentId"] == crossing["paymentId"]
    assert "goalPublishedAt" not in campaign and platform.published("funding.goal_reached") == []

    campaign_closer.handler({}, FakeContext())  # too fresh: funding_update may still be sending it
    assert platform.published("funding.goal_reached") == []
    aws.update_item(
        "fundings",
        {"fundingId": funding_id},
        "SET goalReachedAt = :at",
        {":at": iso(datetime.now(UTC) - timedelta(minutes=10))},
    )
    campaign_closer.handler({}, FakeContext())
    campaign_closer.handler({}, FakeContext())

    goal = platform.published("funding.goal_reached")
    assert len(goal) == 1 and goal[0]["paymentId"] == crossing["paymentId"]
    assert platform.campaign(funding_id)["goalPublishedAt"]
    platform.run()
    assert {platform.payment(p["paymentId"])["state"] for p in (first, crossing)} == {"CAPTURED"}
    assert [r["type"] for r in platform.ledger(funding_id)].count("funding.goal_reached") == 1
    _assert_books_balance(platform, funding_id)
