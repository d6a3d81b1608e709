"""payment_processor, pg_gateway and payment_retry: authorization under failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas import payment_processor, pg_gateway
from lambdas.shared import aws, contract, payments
from lambdas.shared import gateway as gateway_module
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
    real = payments.transition_or_current
    crashed: list[str] = []

    def crash_once(*args, **kwargs):  # the process dies right after the gateway said yes
        if not crashed:
            crashed.append(args[0])
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(payment_processor, "transition_or_current", crash_once)
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
    assert platform.gateway.count("authorize", payment["paymentId"]) == 9  # 3 attempts x maxReceiveCount 3
    assert platform.campaign(funding_id)["fundingAmount"] == 0
    # The release of any lost authorization is still owed (and recorded as owed in the same write
    # as FAILED): the record stays in the DLQ, not dropped. The terminal state is announced at once
    # (the ledger and the backer hear of it while the gateway is down), always as the same event.
    assert "voidedAt" not in stored
    assert stored["owed"] == "FAILED" and stored["owedSince"]
    assert {e["eventId"] for e in platform.published("payment.failed")} == {
        e["eventId"] for e in platform.published("payment.failed")[:1]
    }
    assert platform.depth(PROCESSING_DLQ) == 1

    platform.gateway.always_fail = False
    platform.run()
    settled = platform.payment(payment["paymentId"])
    assert settled["voidedAt"] and "owed" not in settled
    assert platform.depth(PROCESSING_DLQ) == 0
    failed = platform.published("payment.failed")
    assert {e["paymentId"] for e in failed} == {payment["paymentId"]}
    assert len({e["eventId"] for e in failed}) == 1  # re-sent while the void was owed: one event
    assert failed[0]["occurredAt"] == settled["failedAt"]
    assert platform.gateway_record(payment["paymentId"])["voids"] == 1


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


# --- the gateway serializes authorize, void and refund per payment (DESIGN §3.6, issue item 4) ---


def _gateway(operation: str, payment_id: str, amount: int = 5_000) -> dict[str, Any]:
    return pg_gateway.handler(
        {"operation": operation, "paymentId": payment_id, "amount": amount}, FakeContext()
    )


def _idempotency_items() -> list[dict[str, Any]]:
    return aws.client("dynamodb").scan(TableName="idempotency")["Items"]


def test_gateway_refuses_an_authorize_that_arrives_after_the_void(platform: Platform) -> None:
    void = _gateway("void", "p-late")
    authorize = _gateway("authorize", "p-late")

    assert void["outcome"] == "VOIDED" and void["authorized"] is False
    assert authorize["ok"] and authorize["outcome"] == "DECLINED" and authorize["reason"] == "voided"
    record = platform.gateway_record("p-late")
    assert record["paymentId"] == "p-late" and record["voids"] == 1 and record["authorizeRefused"]
    assert "authorizedAt" not in record
    assert _gateway("authorize", "p-late")["outcome"] == "DECLINED"
    assert "authorizedAt" not in platform.gateway_record("p-late")


def test_gateway_voids_an_authorization_once_however_often_asked(platform: Platform) -> None:
    authorize = _gateway("authorize", "p-held")
    first = _gateway("void", "p-held")
    again = _gateway("void", "p-held")
    later = _gateway("void", "p-held")

    assert authorize["outcome"] == "APPROVED"
    assert first["outcome"] == "VOIDED" and first["authorized"] is True
    assert again == first
    assert later == first
    record = platform.gateway_record("p-held")
    assert record["authorizedAt"] == authorize["processedAt"] and record["voids"] == 1
    # A re-run of the authorize whose answer was lost answers from the record, never re-holds.
    assert _gateway("authorize", "p-held")["processedAt"] == authorize["processedAt"]
    refund = _gateway("refund", "p-other")
    assert _gateway("refund", "p-other") == refund
    assert platform.gateway_record("p-other")["refunds"] == 1
    # The record is the gateway's only bookkeeping: one item per payment, nothing else.
    assert sorted(item["id"]["S"] for item in _idempotency_items()) == sorted(
        contract.gateway_record_id(p) for p in ("p-held", "p-other")
    )


def test_gateway_refuses_a_repeat_with_another_amount_without_writing(platform: Platform) -> None:
    for operation in ("authorize", "void", "refund"):
        payment_id = f"p-{operation}"
        first = _gateway(operation, payment_id, 5_000)
        before = platform.gateway_record(payment_id)
        conflict = _gateway(operation, payment_id, 7_000)
        assert first["ok"] and conflict["error"] == "CONFLICT" and conflict["retryable"] is False
        assert platform.gateway_record(payment_id) == before
    # Another operation with another amount on an existing record is refused the same way.
    assert _gateway("void", "p-authorize", 9_999)["error"] == "CONFLICT"
    assert "voidedAt" not in platform.gateway_record("p-authorize")


def _dlq_request_at_the_last_attempt(platform: Platform, payment: dict[str, Any]) -> None:
    event = dict(platform.requested_event(payment), attempt=3)  # RETRY_MAX_ATTEMPTS=3
    platform.sqs.send_message(QueueUrl=platform.queue_urls[PROCESSING_DLQ], MessageBody=json.dumps(event))


def test_give_up_that_voids_before_the_processor_authorizes_leaves_nothing_held(
    platform: Platform, no_retry_delay: list[int]
) -> None:
    """Issue 13 item 4: the processor read PENDING; payment_retry gave up (FAILED, void); then the
    processor's authorize reached the gateway. The gateway must refuse it."""
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 8_000)
    _dlq_request_at_the_last_attempt(platform, payment)
    real_invoke = platform.gateway.invoke
    interleaved: list[str] = []

    def give_up_first(**kwargs: Any) -> Any:
        request = json.loads(kwargs["Payload"])
        if request["operation"] == "authorize" and not interleaved:
            interleaved.append(request["paymentId"])
            platform.pump("payment_retry")  # gives up: PENDING→FAILED, void, payment.failed
        return real_invoke(**kwargs)

    gateway_module.set_invoke(give_up_first)
    try:
        platform.pump("payment_processor")
    finally:
        gateway_module.set_invoke(real_invoke)
    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert interleaved == [payment["paymentId"]]
    assert stored["state"] == "FAILED" and stored["voidedAt"] and "owed" not in stored
    record = platform.gateway_record(payment["paymentId"])
    assert "authorizedAt" not in record, f"an authorization is held: {record}"
    assert record["voids"] == 1 and record["authorizeRefused"]
    assert [e["paymentId"] for e in platform.published("payment.failed")] == [payment["paymentId"]]
    assert platform.published("payment.approved") == []


def test_give_up_after_the_authorization_voids_it_exactly_once(
    platform: Platform, no_retry_delay: list[int]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 8_000)
    _dlq_request_at_the_last_attempt(platform, payment)
    real_invoke = platform.gateway.invoke
    interleaved: list[str] = []

    def give_up_after_authorize(**kwargs: Any) -> Any:
        answer = real_invoke(**kwargs)
        if json.loads(kwargs["Payload"])["operation"] == "authorize" and not interleaved:
            interleaved.append("gave up")
            platform.pump("payment_retry")  # FAILED and voided between the authorize and the write
        return answer

    gateway_module.set_invoke(give_up_after_authorize)
    try:
        platform.pump("payment_processor")
    finally:
        gateway_module.set_invoke(real_invoke)
    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert interleaved and stored["state"] == "FAILED" and stored["voidedAt"]
    record = platform.gateway_record(payment["paymentId"])
    assert record["authorizedAt"] and record["voids"] == 1
    assert platform.gateway.count("void", payment["paymentId"]) == 2  # retry's void + the processor's repeat
    assert platform.published("payment.captured") == []


def test_declined_event_lost_until_the_dlq_is_sent_by_payment_retry(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, no_retry_delay: list[int]
) -> None:
    """Issue 13 item 10: DECLINED stored, payment.declined never published before the DLQ."""
    monkeypatch.setenv("PG_DECLINE_RATE", "1")
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 9_000)
    sns = aws.client("sns")
    real_publish_batch = sns.publish_batch

    def outage(**kwargs: Any) -> dict[str, Any]:
        return {
            "Successful": [],
            "Failed": [
                {"Id": e["Id"], "Code": "InternalError"} for e in kwargs["PublishBatchRequestEntries"]
            ],
        }

    monkeypatch.setattr(sns, "publish_batch", outage)
    for _ in range(4):  # maxReceiveCount 3: the next receive moves the request to the DLQ
        platform.pump("payment_processor")
    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "DECLINED" and stored["owed"] == "DECLINED"
    assert platform.depth(PROCESSING_DLQ) == 1

    monkeypatch.setattr(sns, "publish_batch", real_publish_batch)
    platform.pump("payment_retry")

    declined = platform.published("payment.declined")
    assert [e["paymentId"] for e in declined] == [payment["paymentId"]]
    assert (
        declined[0]["occurredAt"] == stored["declinedAt"] and declined[0]["reason"] == stored["declineReason"]
    )
    assert "owed" not in platform.payment(payment["paymentId"])
    assert platform.depth(PROCESSING_DLQ) == 0 and no_retry_delay == []


def test_give_up_on_an_unknown_payment_is_one_ledger_row_however_often_delivered(
    platform: Platform,
) -> None:
    """Issue 13 item 6: payment.failed for a payment the table does not hold, redelivered."""
    event = contract.make_event(
        "payment.requested",
        payment_id="ghost",
        funding_id="f-ghost",
        user_id="u",
        amount=1_000,
        occurred_at="2025-05-05T05:05:05.005Z",
        attempt=3,
    )
    for _ in range(2):
        platform.sqs.send_message(QueueUrl=platform.queue_urls[PROCESSING_DLQ], MessageBody=json.dumps(event))
        platform.pump("payment_retry")
        platform.run(functions=("ledger_recorder",))

    failed = platform.published("payment.failed")
    assert len(failed) == 2 and failed[0] == failed[1]
    assert failed[0]["occurredAt"] == "2025-05-05T05:05:05.005Z"
    assert [r["type"] for r in platform.ledger("f-ghost")] == ["payment.failed"]


def test_processor_reads_its_batch_with_one_batch_get(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign()
    for i in range(4):
        platform.create_payment(funding_id, 1_000 + i)
    calls: list[str] = []
    ddb = aws.client("dynamodb")
    for name in ("get_item", "batch_get_item", "update_item"):
        real = getattr(ddb, name)

        def spy(_real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            if kwargs.get("TableName", "payments") == "payments":  # not the gateway's own table
                calls.append(_name)
            return _real(**kwargs)

        monkeypatch.setattr(ddb, name, spy)

    platform.pump("payment_processor")

    assert calls.count("batch_get_item") == 1 and calls.count("get_item") == 0
    assert calls.count("update_item") == 4  # the four transitions; APPROVED owes nothing to clear
