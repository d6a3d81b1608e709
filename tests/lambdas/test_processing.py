"""payment_processor, pg_gateway and payment_retry: authorization under failures."""

from __future__ import annotations

import json

import pytest

from lambdas import payment_processor, pg_gateway
from lambdas.shared import aws, payments
from tests.lambdas.conftest import PROCESSING_DLQ, PROCESSING_QUEUE, FakeContext, Platform


def test_declined_payment_is_final_and_the_backer_is_told(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_DECLINE_RATE", "1")
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 20_000)

    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "DECLINED"
    assert stored["declineReason"] in pg_gateway.DECLINE_REASONS
    declined = platform.published("payment.declined")
    assert [e["paymentId"] for e in declined] == [payment["paymentId"]]
    assert platform.campaign(funding_id)["fundingAmount"] == 0
    assert platform.published("payment.captured") == []
    assert platform.depth(PROCESSING_QUEUE) == 0 and platform.depth(PROCESSING_DLQ) == 0


def test_transient_gateway_errors_are_retried_then_captured(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 15_000)
    platform.gateway.fail_next = 1
    platform.gateway.raise_next = 1  # a FunctionError (timeout) is transient too

    platform.run()

    assert platform.payment(payment["paymentId"])["state"] == "CAPTURED"
    assert platform.campaign(funding_id)["fundingAmount"] == 15_000
    assert platform.gateway.count("authorize", payment["paymentId"]) == 3
    assert len(platform.published("payment.captured")) == 1


def test_transient_error_fails_only_that_record(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    first = platform.create_payment(funding_id, 10_000)
    second = platform.create_payment(funding_id, 10_000)
    records = platform.receive(PROCESSING_QUEUE)
    assert len(records) == 2
    platform.gateway.fail_next = 1

    result = platform.invoke_batch("payment_processor", records)

    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [records[0]["messageId"]]
    states = {platform.payment(p["paymentId"])["state"] for p in (first, second)}
    assert states == {"PENDING", "APPROVED"}


def test_crash_after_gateway_approved_before_state_write_captures_once(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 25_000)
    real = payments.transition
    crashed: list[str] = []

    def crash_once(*args, **kwargs):  # the process dies right after the gateway said yes
        if not crashed:
            crashed.append(args[0])
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(payment_processor, "transition", crash_once)
    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert crashed == [payment["paymentId"]]
    assert stored["state"] == "CAPTURED"
    assert platform.gateway.count("authorize", payment["paymentId"]) == 2
    # The gateway answered the repeat from its idempotency record: one authorization, one reference.
    assert stored["authorizationRef"].startswith("aut_")
    assert platform.campaign(funding_id)["fundingAmount"] == 25_000
    assert len(platform.published("payment.captured")) == 1


def test_always_failing_gateway_goes_dlq_backoff_then_failed(
    platform: Platform, no_retry_delay: list[int]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 12_000)
    platform.gateway.always_fail = True

    platform.run(max_rounds=30, strict=False)  # the DLQ record keeps failing while the void is owed

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "FAILED"
    assert no_retry_delay == [30, 60]  # RETRY_MAX_ATTEMPTS=3: two re-sends, exponential
    failed = platform.published("payment.failed")
    assert {e["paymentId"] for e in failed} == {payment["paymentId"]}
    assert platform.gateway.count("authorize", payment["paymentId"]) == 9  # 3 attempts x maxReceiveCount 3
    assert platform.campaign(funding_id)["fundingAmount"] == 0
    # The release of any lost authorization is still owed: the record stays in the DLQ, not dropped.
    assert "voidedAt" not in stored
    assert platform.depth(PROCESSING_DLQ) == 1

    platform.gateway.always_fail = False
    platform.run()
    assert platform.payment(payment["paymentId"])["voidedAt"]
    assert platform.depth(PROCESSING_DLQ) == 0
    assert {e["eventId"] for e in platform.published("payment.failed")} == {failed[0]["eventId"]}


def test_backoff_is_exponential_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas import payment_retry

    monkeypatch.setenv("RETRY_BASE_DELAY_SECONDS", "20")
    monkeypatch.setenv("RETRY_MAX_DELAY_SECONDS", "5000")
    assert [payment_retry.backoff_seconds(a) for a in (1, 2, 3, 4, 6, 10)] == [20, 40, 80, 160, 640, 900]
    monkeypatch.setenv("RETRY_MAX_DELAY_SECONDS", "100")
    assert payment_retry.backoff_seconds(5) == 100


def test_retry_of_an_already_settled_payment_sends_nothing(
    platform: Platform, no_retry_delay: list[int]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, publish=False, state="CAPTURED")
    body = json.dumps(platform.requested_event(payment))
    platform.sqs.send_message(QueueUrl=platform.queue_urls[PROCESSING_DLQ], MessageBody=body)

    platform.pump("payment_retry")

    assert no_retry_delay == []
    assert platform.depth(PROCESSING_DLQ) == 0 and platform.depth(PROCESSING_QUEUE) == 0


def test_retry_resend_is_idempotent_per_attempt(platform: Platform, no_retry_delay: list[int]) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, publish=False)
    event = platform.requested_event(payment)
    for _ in range(2):  # the same DLQ message delivered twice (e.g. a crash after sending)
        platform.sqs.send_message(QueueUrl=platform.queue_urls[PROCESSING_DLQ], MessageBody=json.dumps(event))
    platform.pump("payment_retry")

    assert no_retry_delay == [30]
    resent = platform.receive(PROCESSING_QUEUE)
    assert len(resent) == 1
    assert json.loads(resent[0]["body"])["attempt"] == 2


def test_poison_message_is_failed_towards_the_dlq_not_dropped(platform: Platform) -> None:
    platform.sqs.send_message(QueueUrl=platform.queue_urls[PROCESSING_QUEUE], MessageBody="{not json")
    platform.sqs.send_message(
        QueueUrl=platform.queue_urls[PROCESSING_QUEUE],
        MessageBody=json.dumps({"type": "payment.requested", "paymentId": "p"}),
    )
    for _ in range(4):
        records = platform.receive(PROCESSING_QUEUE)
        if records:
            result = platform.invoke_batch("payment_processor", records)
            assert len(result["batchItemFailures"]) == len(records)
    assert platform.depth(PROCESSING_QUEUE) == 0
    assert platform.depth(PROCESSING_DLQ) == 2


def test_gateway_is_idempotent_and_reproducible(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = FakeContext()
    first = pg_gateway.handler({"operation": "authorize", "paymentId": "p-1", "amount": 5_000}, ctx)
    again = pg_gateway.handler({"operation": "authorize", "paymentId": "p-1", "amount": 5_000}, ctx)
    assert first["ok"] and first["outcome"] == "APPROVED"
    assert again == first
    conflict = pg_gateway.handler({"operation": "authorize", "paymentId": "p-1", "amount": 6_000}, ctx)
    assert conflict == {**conflict, "ok": False, "error": "CONFLICT", "retryable": False}
    invalid = pg_gateway.handler({"operation": "capture", "paymentId": "p-1", "amount": 1}, ctx)
    assert invalid["error"] == "INVALID_REQUEST" and invalid["retryable"] is False
    void = pg_gateway.handler({"operation": "void", "paymentId": "p-1", "amount": 5_000}, ctx)
    assert void["outcome"] == "VOIDED"

    monkeypatch.setenv("PG_TRANSIENT_FAILURE_RATE", "0.5")
    monkeypatch.setenv("PG_SEED", "42")

    def run(prefix: str) -> list[bool]:
        aws.reset()  # also reseeds the generator, like a new execution environment
        return [
            pg_gateway.handler({"operation": "refund", "paymentId": f"{prefix}-{i}", "amount": 1_000}, ctx)[
                "ok"
            ]
            for i in range(12)
        ]

    outcomes = run("a")
    assert 0 < outcomes.count(False) < 12
    assert run("b") == outcomes


def test_gateway_decline_rate_is_per_payment_and_stable(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_DECLINE_RATE", "0.5")
    ctx = FakeContext()
    answers = [
        pg_gateway.handler({"operation": "authorize", "paymentId": f"d-{i}", "amount": 1_000}, ctx)["outcome"]
        for i in range(40)
    ]
    assert 5 < answers.count("DECLINED") < 35
    assert set(answers) == {"APPROVED", "DECLINED"}


def test_decisions_go_out_in_one_publish_batch_and_an_unsent_one_fails_only_its_record(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign()
    payments_made = [platform.create_payment(funding_id, 10_000 + i) for i in range(3)]
    sns = aws.client("sns")
    real_publish_batch = sns.publish_batch
    calls: list[int] = []
    unlucky = payments_made[1]["paymentId"]

    def lossy_publish_batch(**kwargs: object) -> dict[str, object]:
        entries = list(kwargs["PublishBatchRequestEntries"])  # type: ignore[call-overload]
        calls.append(len(entries))
        lost = [e for e in entries if json.loads(e["Message"])["paymentId"] == unlucky]
        sent = [e for e in entries if e not in lost]
        if sent:
            real_publish_batch(TopicArn=kwargs["TopicArn"], PublishBatchRequestEntries=sent)
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "InternalError"} for e in lost]}

    monkeypatch.setattr(sns, "publish_batch", lossy_publish_batch)
    records = platform.receive(PROCESSING_QUEUE)
    result = platform.invoke_batch("payment_processor", records)

    assert calls == [3], "three decisions, one PublishBatch call"
    unlucky_message = next(r["messageId"] for r in records if unlucky in r["body"])
    assert result["batchItemFailures"] == [{"itemIdentifier": unlucky_message}]
    assert platform.payment(unlucky)["state"] == "APPROVED"  # the decision is stored either way

    monkeypatch.setattr(sns, "publish_batch", real_publish_batch)
    platform.run()
    approved = platform.published("payment.approved")
    assert sorted(e["paymentId"] for e in approved) == sorted(p["paymentId"] for p in payments_made)
    assert {platform.payment(p["paymentId"])["state"] for p in payments_made} == {"CAPTURED"}
