"""funding_update and transaction_check: capture once, count exactly, close once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas import funding_update
from lambdas.shared import aws
from tests.lambdas.conftest import Platform

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
    calls: list[int] = []
    real = aws.client("dynamodb").transact_write_items

    def spy(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        return real(**kwargs)

    monkeypatch.setattr(aws.client("dynamodb"), "transact_write_items", spy)
    platform.pump("funding_update")

    assert calls == [11]
    assert platform.campaign(funding_id)["fundingAmount"] == 100_000


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
    assert sizes == [100, 52]
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
    assert len(platform.published("payment.cancelled")) == 1


def test_poison_record_fails_alone(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    platform.create_payment(funding_id, 10_000)
    _approve_all(platform)
    records = platform.receive(FUNDING_QUEUE)
    poison = dict(records[0], messageId="poison", body='{"type": "payment.approved"}')

    result = funding_update.handler({"Records": [*records, poison]}, None)

    assert result["batchItemFailures"] == [{"itemIdentifier": "poison"}]
    assert platform.campaign(funding_id)["fundingAmount"] == 10_000
