"""ledger_recorder and notifier: once per event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from lambdas import ledger_recorder, notifier
from lambdas.shared import aws, contract
from tests.lambdas.conftest import FakeContext, Platform


def _sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def _record(event: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


def test_ledger_records_each_event_once_in_time_order(platform: Platform) -> None:
    events = [
        contract.make_event("payment.requested", payment_id="p1", funding_id="f1", amount=5, occurred_at=at)
        for at in ("2025-01-02T00:00:00.000Z", "2025-01-01T00:00:00.000Z")
    ]
    batch = [_record(events[0], "a"), _record(events[1], "b"), _record(events[0], "c")]  # "c" duplicates "a"
    assert ledger_recorder.handler({"Records": batch}, FakeContext())["batchItemFailures"] == []
    assert ledger_recorder.handler({"Records": batch[:1]}, FakeContext())["batchItemFailures"] == []

    rows = platform.ledger("f1")
    assert [r["eventId"] for r in rows] == [events[1]["eventId"], events[0]["eventId"]]
    assert json.loads(rows[0]["event"]) == events[1]


def test_ledger_fails_poison_records(platform: Platform) -> None:
    result = ledger_recorder.handler({"Records": [_record({"type": "nope"}, "x")]}, FakeContext())
    assert result["batchItemFailures"] == [{"itemIdentifier": "x"}]


def test_ledger_writes_a_batch_in_one_call_and_fails_only_unwritten_records(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [
        contract.make_event("payment.requested", payment_id=f"p{i}", funding_id="f2", amount=5 + i)
        for i in range(30)
    ]
    dynamodb = aws.client("dynamodb")
    real_transact = dynamodb.transact_write_items
    calls: list[int] = []
    stuck = contract.ledger_record_key(events[7])

    def conflicted(**kwargs: Any) -> dict[str, Any]:
        items = kwargs["TransactItems"]
        calls.append(len(items))
        keys = [item["Put"]["Item"]["recordKey"]["S"] for item in items]
        if stuck in keys:  # another transaction keeps holding this row
            reasons = [{"Code": "TransactionConflict" if k == stuck else "None"} for k in keys]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return real_transact(**kwargs)

    monkeypatch.setattr(dynamodb, "transact_write_items", conflicted)
    monkeypatch.setattr(ledger_recorder.time, "sleep", lambda _seconds: None)
    batch = [_record(event, f"m{i}") for i, event in enumerate(events)]
    result = ledger_recorder.handler({"Records": batch}, FakeContext())

    assert result["batchItemFailures"] == [{"itemIdentifier": "m7"}]
    assert len(platform.ledger("f2")) == 29
    # One transaction of 30 cancelled by the conflict; the 29 others in one more; the stuck row
    # alone until it has made no progress five times.
    assert calls == [30, 29, 1, 1, 1, 1, 1]


def test_a_redelivered_event_adds_nothing_and_changes_nothing(platform: Platform) -> None:
    """Issue 13 item 6: the ledger is append-only; a redelivery is a duplicate, not a rewrite."""
    event = contract.make_event("payment.captured", payment_id="p1", funding_id="f3", amount=700)
    assert (
        ledger_recorder.handler({"Records": [_record(event, "a")]}, FakeContext())["batchItemFailures"] == []
    )
    (row,) = platform.ledger("f3")

    again = ledger_recorder.handler({"Records": [_record(event, "b"), _record(event, "c")]}, FakeContext())

    assert again["batchItemFailures"] == []
    assert platform.ledger("f3") == [row]  # same row, same recordedAt: never rewritten


def test_a_different_event_reusing_a_key_never_replaces_the_row(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    original = contract.make_event("payment.captured", payment_id="p1", funding_id="f4", amount=700)
    forged = dict(original, amount=70_000)  # same eventId and occurredAt: same ledger key
    assert (
        ledger_recorder.handler({"Records": [_record(original, "a")]}, FakeContext())["batchItemFailures"]
        == []
    )

    result = ledger_recorder.handler({"Records": [_record(forged, "b")]}, FakeContext())

    assert result["batchItemFailures"] == []  # redelivering it would not help: it is dropped, loudly
    (row,) = platform.ledger("f4")
    assert json.loads(row["event"]) == original and row["amount"] == 700
    assert '"LedgerConflicts":[1.0]' in capsys.readouterr().out


def test_ledger_puts_are_conditional(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    dynamodb = aws.client("dynamodb")
    real_transact = dynamodb.transact_write_items
    monkeypatch.setattr(
        dynamodb,
        "transact_write_items",
        lambda **kw: (seen.extend(kw["TransactItems"]), real_transact(**kw))[1],
    )
    events = [
        contract.make_event("payment.requested", payment_id=f"p{i}", funding_id="f5") for i in range(25)
    ]

    ledger_recorder.handler({"Records": [_record(e, f"m{i}") for i, e in enumerate(events)]}, FakeContext())

    assert len(seen) == 25 and all(set(item) == {"Put"} for item in seen)
    assert {item["Put"]["ConditionExpression"] for item in seen} == {"attribute_not_exists(#k)"}


def test_backer_gets_one_email_per_event_even_when_delivered_twice(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 12_345, publish=False, email="kim@example.com")
    event = contract.make_event(
        "payment.declined",
        payment_id=payment["paymentId"],
        funding_id=funding_id,
        user_id=payment["userId"],
        amount=12_345,
        reason="insufficient_funds",
    )
    for message_id in ("a", "b"):
        assert (
            notifier.handler({"Records": [_record(event, message_id)]}, FakeContext())["batchItemFailures"]
            == []
        )

    sent = _sent()
    assert len(sent) == 1
    assert sent[0].destinations["ToAddresses"] == ["kim@example.com"]
    assert sent[0].source == "noreply@crowdfunding.example"
    assert "declined" in sent[0].subject and "Solar lamps for Ulsan" in sent[0].subject
    assert "12,345 KRW" in sent[0].body and "insufficient funds" in sent[0].body


def test_creator_is_told_the_goal_was_reached(platform: Platform) -> None:
    funding_id = platform.create_campaign(
        goal=10_000, owner_email="owner@example.com", title="<Lamps & more>"
    )
    platform.create_payment(funding_id, 10_000)

    platform.run()

    sent = _sent()
    assert len(sent) == 1 and sent[0].destinations["ToAddresses"] == ["owner@example.com"]
    assert "reached its goal" in sent[0].subject


def test_html_part_escapes_user_content() -> None:
    from lambdas.shared.templates import TEMPLATES, render

    _, text, html = render(
        TEMPLATES[contract.EventType.FUNDING_GOAL_REACHED],
        {"title": "<script>x</script>", "fundingAmount": "1", "goalAmount": "1"},
    )
    assert "<script>" in text and "<script>" not in html and "&lt;script&gt;" in html


def test_unknown_address_is_skipped_and_counted_not_guessed(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 1_000, publish=False, email=None)
    event = contract.make_event(
        "payment.failed",
        payment_id=payment["paymentId"],
        funding_id=funding_id,
        user_id=payment["userId"],
        amount=1_000,
    )
    assert notifier.handler({"Records": [_record(event)]}, FakeContext())["batchItemFailures"] == []
    assert _sent() == []
    assert '"NotificationsSkipped":[1.0]' in capsys.readouterr().out


def test_a_stack_without_a_sender_skips_every_email_without_looking_anything_up(
    platform: Platform,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The committed dev stack sets no sesSender: the notifier runs, sends nothing, says why."""
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 1_000, publish=False, email="kim@example.com")
    event = contract.make_event(
        "payment.refunded", payment_id=payment["paymentId"], funding_id=funding_id, amount=1_000
    )
    monkeypatch.delenv("SES_SENDER")
    looked_up: list[str] = []
    monkeypatch.setattr(notifier, "get_campaign", lambda funding: looked_up.append(funding))

    assert notifier.handler({"Records": [_record(event)]}, FakeContext())["batchItemFailures"] == []
    assert _sent() == [] and looked_up == []
    assert any(
        "no sender configured (crowdfunding:sesSender unset)" in r.getMessage() for r in caplog.records
    )
    assert '"NotificationsSkipped":[1.0]' in capsys.readouterr().out


def test_address_is_looked_up_in_cognito_by_sub(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = aws.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    idp.admin_create_user(
        UserPoolId=pool, Username="lee", UserAttributes=[{"Name": "email", "Value": "lee@example.com"}]
    )
    sub = next(
        a["Value"]
        for a in idp.admin_get_user(UserPoolId=pool, Username="lee")["UserAttributes"]
        if a["Name"] == "sub"
    )
    monkeypatch.setenv("COGNITO_USER_POOL_ID", pool)
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 1_000, publish=False, email=None, userId=sub)
    event = contract.make_event(
        "payment.refunded", payment_id=payment["paymentId"], funding_id=funding_id, user_id=sub, amount=1_000
    )

    assert notifier.handler({"Records": [_record(event)]}, FakeContext())["batchItemFailures"] == []

    sent = _sent()
    assert len(sent) == 1 and sent[0].destinations["ToAddresses"] == ["lee@example.com"]
