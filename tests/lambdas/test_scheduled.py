"""campaign_closer and reconciler: deadlines, refunds, stale payments, the ledger's dead-letter queue."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas import campaign_closer, ledger_recorder, reconciler
from lambdas.shared import aws, contract
from lambdas.shared.events import derived_event_id
from tests.lambdas.conftest import ACCOUNT, MAX_RECEIVE_COUNT, REGION, FakeContext, Platform, iso

SCHEDULE_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
LEDGER_QUEUE = "ledger"
LEDGER_DLQ = "ledger-dlq"


@pytest.fixture(autouse=True)
def ledger_dead_letter_queue(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The ledger's DLQ as deployed: the ledger queue moves a record there after its last receive."""
    url = platform.sqs.create_queue(QueueName=LEDGER_DLQ)["QueueUrl"]
    assert url == os.environ[contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL]
    assert platform.queue_urls[LEDGER_QUEUE] == os.environ[contract.ENV_LEDGER_QUEUE_URL]
    platform.queue_urls[LEDGER_DLQ] = url
    platform.sqs.set_queue_attributes(
        QueueUrl=platform.queue_urls[LEDGER_QUEUE],
        Attributes={
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{LEDGER_DLQ}",
                    "maxReceiveCount": str(MAX_RECEIVE_COUNT),
                }
            )
        },
    )
    # moto answers a short poll with every visible message (no server sampling); the deployed 1 s
    # long poll would only add a second to every sweeper run here.
    monkeypatch.setattr(reconciler, "REDRIVE_WAIT_SECONDS", 0)
    yield url


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
    assert first == {
        "republished": 2,
        "skipped": 0,
        "approvedResent": 0,
        "owedSettled": 0,
        "owedUnfinished": 0,
        "ledgerRedriven": 0,
        "ledgerPoison": 0,
        "ledgerUnsent": 0,
    }
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


def _hour_ago() -> str:
    return iso(datetime.now(UTC) - timedelta(hours=1))


def _delete(funding_id: str) -> None:
    """What the API's DELETE writes: a soft delete of an OPEN campaign before its deadline."""
    aws.update_item(
        "fundings",
        {"fundingId": funding_id},
        "SET #s = :deleted, deletedAt = :now",
        {":deleted": "DELETED", ":now": iso(datetime.now(UTC))},
        names={"#s": "state"},
    )


def _assert_books_balance(platform: Platform, funding_id: str) -> None:
    campaign = platform.campaign(funding_id)
    assert campaign["fundingAmount"] == platform.captured_sum(funding_id)
    ledger = platform.ledger(funding_id)
    captured = sum(r["amount"] for r in ledger if r["type"] == "payment.captured")
    refunded = sum(r["amount"] for r in ledger if r["type"] == "payment.refunded")
    assert campaign["fundingAmount"] == captured - refunded


# --- a deleted campaign is settled like a failed one (issue 13 item 1) ------------------------------


def test_deleted_campaign_refunds_its_captured_payments_and_cancels_the_rest(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    captured = [platform.create_payment(funding_id, amount) for amount in (10_000, 25_000)]
    platform.run()
    in_flight = platform.create_payment(funding_id, 7_000)
    platform.run(functions=("payment_processor",))  # approved, its capture not yet run
    _delete(funding_id)

    summary = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    platform.run()

    assert summary == {"succeeded": 0, "failed": 0, "refunded": 2, "errors": 0}
    campaign = platform.campaign(funding_id)
    assert (
        campaign["state"] == "DELETED" and campaign["fundingAmount"] == 0 and campaign["refundsCompletedAt"]
    )
    assert {platform.payment(p["paymentId"])["state"] for p in captured} == {"REFUNDED"}
    late = platform.payment(in_flight["paymentId"])
    assert late["state"] == "CANCELLED" and late["voidedAt"]
    refunds = platform.published("payment.refunded")
    assert sorted(e["amount"] for e in refunds) == [10_000, 25_000]
    assert {e["reason"] for e in refunds} == {"the campaign was cancelled by its creator"}
    assert platform.published("funding.failed") == []  # a deletion is not a close
    assert platform.owed() == []
    assert all(platform.gateway_record(p["paymentId"])["refunds"] == 1 for p in captured)
    _assert_books_balance(platform, funding_id)
    assert campaign_closer.handler(SCHEDULE_EVENT, FakeContext())["refunded"] == 0


# --- refund events are never lost (issue 13 item 2) -----------------------------------------------


def test_refund_events_lost_in_an_outage_are_sent_later_and_completion_waits_for_them(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    payments = [platform.create_payment(funding_id, 10_000 + i) for i in range(3)]
    platform.run()
    _past_deadline(platform, funding_id)
    sns = aws.client("sns")
    real_publish_batch = sns.publish_batch
    unlucky = payments[0]["paymentId"]

    def lossy(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["PublishBatchRequestEntries"]
        lost = [e for e in entries if json.loads(e["Message"])["paymentId"] == unlucky]
        sent = [e for e in entries if e not in lost]
        if sent:
            real_publish_batch(TopicArn=kwargs["TopicArn"], PublishBatchRequestEntries=sent)
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "InternalError"} for e in lost]}

    monkeypatch.setattr(sns, "publish_batch", lossy)
    first = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    assert first["refunded"] == 3  # one unsent event stopped nothing
    assert {platform.payment(p["paymentId"])["state"] for p in payments} == {"REFUNDED"}
    campaign = platform.campaign(funding_id)
    assert campaign["fundingAmount"] == 0 and "refundsCompletedAt" not in campaign
    assert [p["paymentId"] for p in platform.owed("REFUNDED")] == [unlucky]
    assert len(platform.published("payment.refunded")) == 2

    monkeypatch.setattr(sns, "publish_batch", real_publish_batch)
    second = campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    assert second["refunded"] == 0 and platform.gateway.count("refund") == 3
    refunds = platform.published("payment.refunded")
    assert sorted(e["paymentId"] for e in refunds) == sorted(p["paymentId"] for p in payments)
    assert platform.owed() == [] and platform.campaign(funding_id)["refundsCompletedAt"]
    platform.run()
    _assert_books_balance(platform, funding_id)


def test_the_close_event_is_identical_when_re_sent_after_refunds(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=1_000_000)
    platform.create_payment(funding_id, 10_000)
    platform.run()
    _past_deadline(platform, funding_id)
    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    (first,) = platform.published("funding.failed")
    # A crash lost the marker after the publish: the next run re-sends the same event.
    platform.ddb.update_item(
        TableName="fundings",
        Key=aws.to_attributes({"fundingId": funding_id}),
        UpdateExpression="REMOVE closeEventPublishedAt",
    )
    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())

    again = platform.published("funding.failed")
    assert len(again) == 2 and again[1] == first and first["fundingAmount"] == 10_000


# --- the sweeper: nothing stuck behind an unread DLQ (issue 13 items 3 and 7) -----------------------


def test_sweeper_budget_is_spent_only_on_payments_it_can_act_on(platform: Platform) -> None:
    """600 stale PENDING: the oldest 500 were claimed this period; the lost one behind them goes out."""
    funding_id = platform.create_campaign()
    start = datetime.now(UTC) - timedelta(hours=2)
    claimed_now = iso(datetime.now(UTC))
    ddb = platform.ddb
    for i in range(600):
        item = {
            "paymentId": f"p{i:04d}",
            "fundingId": funding_id,
            "userId": "u",
            "amount": 1_000,
            "paymentMethod": "card",
            "state": "PENDING",
            "createdAt": iso(start + timedelta(seconds=i)),
        }
        if i < 500:
            item.update(reconciledAt=claimed_now, reconcileCount=1)
        ddb.put_item(TableName="payments", Item=aws.to_attributes(item))

    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["republished"] == 100 and summary["skipped"] == 0
    requested = platform.published("payment.requested")
    assert "p0599" in {e["paymentId"] for e in requested}
    assert all(e["reconciled"] for e in requested)


def test_sweeper_resends_a_stale_approval_with_the_processors_own_event(platform: Platform) -> None:
    """A payment.approved whose records exhausted funding-update's retries: APPROVED for ever."""
    open_campaign = platform.create_campaign(goal=1_000_000)
    failed_campaign = platform.create_campaign(goal=1_000_000, state="FAILED")
    old = _hour_ago()
    stuck = platform.create_payment(
        open_campaign, 12_000, state="APPROVED", created_at=old, approvedAt=old, publish=False
    )
    held = platform.create_payment(
        failed_campaign, 8_000, state="APPROVED", created_at=old, approvedAt=old, publish=False
    )
    fresh = platform.create_payment(
        open_campaign, 5_000, state="APPROVED", approvedAt=iso(datetime.now(UTC)), publish=False
    )

    first = reconciler.handler(SCHEDULE_EVENT, FakeContext())
    second = reconciler.handler(SCHEDULE_EVENT, FakeContext())  # claimed this period: not again

    assert first["approvedResent"] == 2 and second["approvedResent"] == 0
    approved = {e["paymentId"]: e for e in platform.published("payment.approved")}
    assert set(approved) == {stuck["paymentId"], held["paymentId"]}
    assert approved[stuck["paymentId"]]["eventId"] == derived_event_id("payment.approved", stuck["paymentId"])
    assert approved[stuck["paymentId"]]["occurredAt"] == old
    platform.run()
    assert platform.payment(stuck["paymentId"])["state"] == "CAPTURED"
    assert platform.payment(held["paymentId"])["state"] == "CANCELLED"
    assert platform.gateway_record(held["paymentId"])["voids"] == 1
    assert platform.payment(fresh["paymentId"])["state"] == "APPROVED"


def test_sweeper_voids_and_announces_cancelled_payments_left_by_exhausted_cancel_records(
    platform: Platform,
) -> None:
    funding_id = platform.create_campaign(goal=10_000, funding_amount=10_000, state="SUCCEEDED")
    payment = platform.create_payment(funding_id, 5_000)
    platform.run(functions=("payment_processor", "funding_update"))
    platform.gateway.always_fail = True  # every void of transaction_check fails...
    for _ in range(5):
        platform.pump("transaction_check")
    platform.sqs.purge_queue(QueueUrl=platform.queue_urls["transaction-check"])  # ...into its DLQ
    platform.gateway.always_fail = False
    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "CANCELLED" and stored["owed"] == "CANCELLED" and "voidedAt" not in stored

    assert reconciler.handler(SCHEDULE_EVENT, FakeContext())["owedSettled"] == 0  # not stale yet
    aws.update_item(
        "payments", {"paymentId": payment["paymentId"]}, "SET owedSince = :t", {":t": _hour_ago()}
    )
    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["owedSettled"] == 1
    settled = platform.payment(payment["paymentId"])
    assert settled["voidedAt"] and "owed" not in settled
    assert {e["paymentId"] for e in platform.published("payment.cancelled")} == {payment["paymentId"]}
    assert len({e["eventId"] for e in platform.published("payment.cancelled")}) == 1
    assert platform.gateway_record(payment["paymentId"])["voids"] == 1


def test_sweeper_finishes_a_failed_payment_whose_void_kept_failing(
    platform: Platform, no_retry_delay: list[int]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 4_000)
    platform.gateway.always_fail = True
    platform.run(max_rounds=30, strict=False)
    platform.sqs.purge_queue(QueueUrl=platform.queue_urls["payment-processing-dlq"])  # dropped at retention
    platform.gateway.always_fail = False
    assert platform.payment(payment["paymentId"])["owed"] == "FAILED"
    aws.update_item(
        "payments", {"paymentId": payment["paymentId"]}, "SET owedSince = :t", {":t": _hour_ago()}
    )

    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["owedSettled"] == 1 and summary["owedUnfinished"] == 0
    settled = platform.payment(payment["paymentId"])
    assert settled["state"] == "FAILED" and settled["voidedAt"] and "owed" not in settled
    assert {e["paymentId"] for e in platform.published("payment.failed")} == {payment["paymentId"]}
    assert len({e["eventId"] for e in platform.published("payment.failed")}) == 1
    assert platform.gateway_record(payment["paymentId"])["voids"] == 1


def test_sweeper_leaves_unfinished_work_owed_when_the_gateway_is_still_down(platform: Platform) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(
        funding_id,
        3_000,
        state="FAILED",
        publish=False,
        failedAt=_hour_ago(),
        failureReason="gateway unavailable after retries",
        owed="FAILED",
        owedSince=_hour_ago(),
    )
    platform.gateway.always_fail = True

    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["owedSettled"] == 0 and summary["owedUnfinished"] == 1
    assert platform.payment(payment["paymentId"])["owed"] == "FAILED"
    # Announced (the state is final) while the void stays owed for the next run.
    assert {e["paymentId"] for e in platform.published("payment.failed")} == {payment["paymentId"]}


def test_a_capture_whose_event_is_still_owed_is_announced_before_its_refund(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REFUNDED replaces `owed`: refunding first would lose payment.captured for good."""
    funding_id = platform.create_campaign(goal=1_000_000)
    payment = platform.create_payment(funding_id, 10_000)
    platform.run(functions=("payment_processor",))
    sns = aws.client("sns")
    real_publish_batch = sns.publish_batch

    def captured_lost(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["PublishBatchRequestEntries"]
        lost = [e for e in entries if json.loads(e["Message"])["type"] == "payment.captured"]
        sent = [e for e in entries if e not in lost]
        if sent:
            real_publish_batch(TopicArn=kwargs["TopicArn"], PublishBatchRequestEntries=sent)
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "InternalError"} for e in lost]}

    monkeypatch.setattr(sns, "publish_batch", captured_lost)
    platform.pump("funding_update")
    monkeypatch.setattr(sns, "publish_batch", real_publish_batch)
    platform.sqs.purge_queue(QueueUrl=platform.queue_urls["funding-update"])  # exhausted into the DLQ
    assert platform.payment(payment["paymentId"])["owed"] == "CAPTURED"
    _past_deadline(platform, funding_id)

    campaign_closer.handler(SCHEDULE_EVENT, FakeContext())
    platform.run()

    assert platform.payment(payment["paymentId"])["state"] == "REFUNDED"
    assert [r["type"] for r in platform.ledger(funding_id) if r.get("paymentId") == payment["paymentId"]] == [
        "payment.requested",
        "payment.approved",
        "payment.captured",
        "payment.refunded",
    ]
    assert platform.owed() == [] and platform.campaign(funding_id)["refundsCompletedAt"]
    _assert_books_balance(platform, funding_id)


# --- the ledger's dead-letter queue is redriven (DESIGN §3 invariants 1 and 5) ---------------------


def _ledger_event(funding_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return contract.make_event(
        contract.EventType.PAYMENT_CAPTURED,
        payment_id=str(uuid.uuid4()),
        funding_id=funding_id or str(uuid.uuid4()),
        user_id="u",
        amount=10_000,
        **extra,
    )


def _dead_letter(platform: Platform, *events: dict[str, Any]) -> None:
    """Put events in the ledger's DLQ as SNS raw delivery left them: JSON body, `type` attribute."""
    for start in range(0, len(events), 10):
        platform.sqs.send_message_batch(
            QueueUrl=platform.queue_urls[LEDGER_DLQ],
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(event),
                    "MessageAttributes": contract.message_attributes(event),
                }
                for i, event in enumerate(events[start : start + 10])
            ],
        )


def _visible(platform: Platform, queue: str) -> int:
    attrs = platform.sqs.get_queue_attributes(
        QueueUrl=platform.queue_urls[queue], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _metrics(out: str) -> dict[str, float]:
    """The reconciler's metrics (name → value) in the EMF documents printed."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' in line:
            document = json.loads(line)
            if document.get("service") != reconciler.SPEC.name:
                continue
            for definition in document["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    value = document[metric["Name"]]
                    values[metric["Name"]] = value[0] if isinstance(value, list) else value
    return values


def test_an_event_whose_ledger_records_exhausted_their_receives_is_recorded_after_one_sweep(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    funding_id = platform.create_campaign()
    payment = platform.create_payment(funding_id, 10_000)  # payment.requested → the ledger queue
    (published,) = platform.published("payment.requested", paymentId=payment["paymentId"])
    monkeypatch.setattr(ledger_recorder, "_backoff", lambda attempt: None)

    def throttled(**_: Any) -> dict[str, Any]:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed"}}
        raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]

    with monkeypatch.context() as throttling:
        throttling.setattr(aws.client("dynamodb"), "transact_write_items", throttled)
        for _ in range(MAX_RECEIVE_COUNT + 1):
            platform.pump("ledger_recorder")
    assert platform.depth(LEDGER_QUEUE) == 0 and platform.depth(LEDGER_DLQ) == 1
    assert platform.ledger(funding_id) == []  # without the sweeper: never recorded
    capsys.readouterr()

    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert (summary["ledgerRedriven"], summary["ledgerPoison"], summary["ledgerUnsent"]) == (1, 0, 0)
    assert platform.depth(LEDGER_DLQ) == 0 and platform.depth(LEDGER_QUEUE) == 1
    assert _metrics(capsys.readouterr().out)["LedgerEventsRedriven"] == 1
    (message,) = platform.sqs.receive_message(
        QueueUrl=platform.queue_urls[LEDGER_QUEUE], MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    assert json.loads(message["Body"]) == published, "sent back unchanged"
    assert message["MessageAttributes"] == {
        "type": {"StringValue": "payment.requested", "DataType": "String"}
    }
    platform.pump("ledger_recorder")
    (row,) = platform.ledger(funding_id)
    assert json.loads(row["event"]) == published

    # Sent again after its row exists (a delete that failed, a crash before it): nothing added.
    _dead_letter(platform, published)
    assert reconciler.handler(SCHEDULE_EVENT, FakeContext())["ledgerRedriven"] == 1
    platform.pump("ledger_recorder")
    assert platform.ledger(funding_id) == [row]
    assert platform.depth(LEDGER_QUEUE) == 0 and platform.depth(LEDGER_DLQ) == 0


def test_a_message_that_is_not_an_event_stays_in_the_ledger_dlq_visible_logged_and_counted(
    platform: Platform, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _ledger_event()
    _dead_letter(platform, good)
    platform.sqs.send_message(QueueUrl=platform.queue_urls[LEDGER_DLQ], MessageBody="{not json")
    platform.sqs.send_message(
        QueueUrl=platform.queue_urls[LEDGER_DLQ], MessageBody=json.dumps({"type": "payment.captured"})
    )
    capsys.readouterr()

    for run in (1, 2):
        caplog.clear()
        summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

        assert (summary["ledgerRedriven"], summary["ledgerPoison"]) == ((1, 2) if run == 1 else (0, 2))
        assert platform.depth(LEDGER_DLQ) == 2
        assert _visible(platform, LEDGER_DLQ) == 2, "visible again at once: the DLQ alarm keeps firing"
        logged = [r for r in caplog.records if r.name == reconciler.SPEC.name and hasattr(r, "reason")]
        assert sorted(r.__dict__["reason"] for r in logged) == [
            "event body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
            "(char 1)",
            "event is missing eventId, occurredAt, paymentId, fundingId",
        ], "each poison message logged once per run, with its reason"
        assert all(r.__dict__["messageId"] for r in logged)
        assert _metrics(capsys.readouterr().out)["PoisonMessages"] == 2
    assert platform.depth(LEDGER_QUEUE) == 1
    (message,) = platform.sqs.receive_message(QueueUrl=platform.queue_urls[LEDGER_QUEUE])["Messages"]
    assert json.loads(message["Body"]) == good


def test_one_run_redrives_at_most_its_bound_and_the_next_run_the_rest(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [_ledger_event() for _ in range(reconciler.REDRIVE_PER_RUN + 5)]
    _dead_letter(platform, *events)
    sqs = aws.client("sqs")
    real_receive = sqs.receive_message
    receives: list[tuple[int, int]] = []

    def receive(**kwargs: Any) -> dict[str, Any]:
        receives.append((kwargs["MaxNumberOfMessages"], kwargs["VisibilityTimeout"]))
        return dict(real_receive(**kwargs))

    monkeypatch.setattr(sqs, "receive_message", receive)
    first = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert first["ledgerRedriven"] == reconciler.REDRIVE_PER_RUN == 100
    assert platform.depth(LEDGER_DLQ) == 5 and platform.depth(LEDGER_QUEUE) == 100
    # Ten per receive, hidden for the rest of the invocation (60 s in FakeContext) plus the margin.
    assert receives == [(10, 60 + reconciler.REDRIVE_VISIBILITY_MARGIN_SECONDS)] * 10
    second = reconciler.handler(SCHEDULE_EVENT, FakeContext())
    assert second["ledgerRedriven"] == 5
    assert platform.depth(LEDGER_DLQ) == 0 and platform.depth(LEDGER_QUEUE) == 105
    platform.run(functions=("ledger_recorder",))
    recorded = {json.loads(r["event"])["eventId"] for e in events for r in platform.ledger(e["fundingId"])}
    assert recorded == {e["eventId"] for e in events}


def test_a_failed_send_leaves_the_message_in_the_ledger_dlq(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    lucky, unlucky = _ledger_event(), _ledger_event()
    _dead_letter(platform, lucky, unlucky)
    sqs = aws.client("sqs")
    real_send_batch = sqs.send_message_batch

    def lossy(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        lost = [e for e in entries if json.loads(e["MessageBody"])["eventId"] == unlucky["eventId"]]
        sent = [e for e in entries if e not in lost]
        response = real_send_batch(QueueUrl=kwargs["QueueUrl"], Entries=sent) if sent else {}
        failed = [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in lost]
        return {"Successful": response.get("Successful", []), "Failed": failed}

    monkeypatch.setattr(sqs, "send_message_batch", lossy)
    partial = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert (partial["ledgerRedriven"], partial["ledgerUnsent"]) == (1, 1)
    assert platform.depth(LEDGER_QUEUE) == 1 and platform.depth(LEDGER_DLQ) == 1
    assert _visible(platform, LEDGER_DLQ) == 1

    def down(**_: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendMessageBatch"
        )  # type: ignore[arg-type]

    monkeypatch.setattr(sqs, "send_message_batch", down)
    outage = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert (outage["ledgerRedriven"], outage["ledgerUnsent"]) == (0, 1)
    assert platform.depth(LEDGER_QUEUE) == 1 and platform.depth(LEDGER_DLQ) == 1

    monkeypatch.setattr(sqs, "send_message_batch", real_send_batch)
    assert reconciler.handler(SCHEDULE_EVENT, FakeContext())["ledgerRedriven"] == 1
    assert platform.depth(LEDGER_QUEUE) == 2 and platform.depth(LEDGER_DLQ) == 0


def test_large_events_are_sent_back_in_batches_sqs_accepts(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [_ledger_event(note="x" * 100_000) for _ in range(3)]
    _dead_letter(platform, *events)
    sqs = aws.client("sqs")
    real_send_batch = sqs.send_message_batch
    sizes: list[int] = []

    def measured(**kwargs: Any) -> dict[str, Any]:
        sizes.append(sum(len(e["MessageBody"].encode()) for e in kwargs["Entries"]))
        return dict(real_send_batch(**kwargs))

    monkeypatch.setattr(sqs, "send_message_batch", measured)

    assert reconciler.handler(SCHEDULE_EVENT, FakeContext())["ledgerRedriven"] == 3
    assert len(sizes) == 2 and max(sizes) <= reconciler.SQS_BATCH_BYTES
    assert platform.depth(LEDGER_QUEUE) == 3 and platform.depth(LEDGER_DLQ) == 0


def test_an_unreadable_ledger_dlq_does_not_stop_the_payment_sweeps(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    platform.sqs.delete_queue(QueueUrl=platform.queue_urls[LEDGER_DLQ])
    funding_id = platform.create_campaign()
    platform.create_payment(funding_id, 7_000, created_at=_hour_ago(), publish=False)

    summary = reconciler.handler(SCHEDULE_EVENT, FakeContext())

    assert summary["republished"] == 1 and summary["ledgerRedriven"] == 0
    (error,) = [r for r in caplog.records if r.name == reconciler.SPEC.name and r.levelname == "ERROR"]
    assert "cannot receive from the ledger's DLQ" in error.getMessage()
    assert contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL in error.getMessage()
