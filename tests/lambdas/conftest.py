"""A whole payment chain on in-process moto: tables from the contract, topics, filtered queues.

`platform` gives a test the deployed shape of DESIGN §1 without Docker: SNS topics fan out to SQS
queues with the contract's filter policies (raw delivery, so the body IS the event), the
processing queue redrives to its DLQ, and `Platform.pump()` plays the Lambda event source
mapping: receive a batch, call the handler, delete what succeeded, make failures visible again.
Moto cannot run Lambda code, so gateway calls go through `FakeGateway`, which calls
`pg_gateway.handler` in-process behind the same boto3-shaped invoke the real client uses.

Every AWS call a function makes during a test is recorded (tests/lambdas/access.py) and checked
at teardown against the access its spec declares: a call outside it fails the test, as the
emulator's enforced IAM (and AWS) would deny it.

moto runs with the embedded emulator's fidelity patches (`toolchain.embedded.moto_fidelity`: atomic
conditional writes and transactions, DynamoDB at a speed independent of table size), so these
tests see the same moto as `make run`, whatever ran before them in the session.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from toolchain.embedded import moto_fidelity

moto_fidelity.apply()

# The functions check their environment at import (cold start), so the deployment environment
# is set before any test module imports them. Resource names match what the fixture creates.
REGION = "us-east-1"
ACCOUNT = "123456789012"
QUEUE_URL_PREFIX = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/"
BASE_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "FUNDINGS_TABLE": "fundings",
    "PAYMENTS_TABLE": "payments",
    "TRANSACTIONS_TABLE": "transactions",
    "IDEMPOTENCY_TABLE": "idempotency",
    "PAYMENTS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:payments",
    "FUNDING_TARGET_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:funding-target",
    "PAYMENT_PROCESSING_QUEUE_URL": QUEUE_URL_PREFIX + "payment-processing",
    "LEDGER_QUEUE_URL": QUEUE_URL_PREFIX + "ledger",
    "LEDGER_DEAD_LETTER_QUEUE_URL": QUEUE_URL_PREFIX + "ledger-dlq",
    "PG_GATEWAY_FUNCTION_NAME": "pg-gateway",
    "RETRY_MAX_ATTEMPTS": "3",
    "RETRY_BASE_DELAY_SECONDS": "30",
    "RETRY_MAX_DELAY_SECONDS": "900",
    "RECONCILE_AFTER_SECONDS": "300",
    "SETTLEMENT_HORIZON_SECONDS": "3600",
    "SES_SENDER": "noreply@crowdfunding.example",
    "POWERTOOLS_METRICS_NAMESPACE": "Crowdfunding",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
for _name, _value in BASE_ENV.items():
    os.environ[_name] = _value
for _name in (
    "PG_TRANSIENT_FAILURE_RATE",
    "PG_DECLINE_RATE",
    "PG_LATENCY_MS",
    "PG_SEED",
    "COGNITO_USER_POOL_ID",
):
    os.environ.pop(_name, None)

from moto import mock_aws  # noqa: E402

from lambdas import (  # noqa: E402
    campaign_closer,
    funding_update,
    ledger_recorder,
    notifier,
    payment_processor,
    payment_retry,
    pg_gateway,
    reconciler,
    transaction_check,
)
from lambdas.shared import aws, contract, gateway  # noqa: E402
from lambdas.specs import catalog  # noqa: E402
from tests.lambdas.access import AccessRecorder, describe  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # Powertools warns when an invocation emitted no business metric (e.g. a duplicate): expected here.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


PROCESSING_QUEUE = "payment-processing"
PROCESSING_DLQ = "payment-processing-dlq"
LEDGER_QUEUE = "ledger"
LEDGER_DLQ = "ledger-dlq"
DEAD_LETTER_QUEUES = {PROCESSING_QUEUE: PROCESSING_DLQ, LEDGER_QUEUE: LEDGER_DLQ}
"""Queues redriven to a DLQ here: the processing queue (payment_retry reads it) and the ledger's
(the sweeper redrives it)."""
MAX_RECEIVE_COUNT = 3
QUEUE_OF: dict[str, str] = {spec.name: fed.queue for spec, fed in catalog.queue_consumers()}
QUEUE_OF["payment_retry"] = PROCESSING_DLQ
MODULES: dict[str, ModuleType] = {
    "payment_processor": payment_processor,
    "payment_retry": payment_retry,
    "funding_update": funding_update,
    "transaction_check": transaction_check,
    "ledger_recorder": ledger_recorder,
    "notifier": notifier,
}
PIPELINE_ORDER = (
    "payment_processor",
    "payment_retry",
    "funding_update",
    "transaction_check",
    "ledger_recorder",
    "notifier",
)


class FakeContext:
    """The parts of a Lambda context the handlers and Powertools read."""

    function_name = "test-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "stream"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class FakeGateway:
    """boto3-shaped `invoke` that runs pg_gateway.handler in-process, with injectable outages."""

    def __init__(self, access: AccessRecorder | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_next = 0
        self.always_fail = False
        self.raise_next = 0
        self.access = access

    def invoke(self, *, FunctionName: str, Payload: bytes, **_: Any) -> dict[str, Any]:
        assert FunctionName == os.environ["PG_GATEWAY_FUNCTION_NAME"]
        if self.access is not None:
            self.access.record("lambda", "Invoke", {"FunctionName": FunctionName})
        request = json.loads(Payload)
        self.calls.append(request)
        if self.raise_next:
            self.raise_next -= 1
            body = {"errorMessage": "Task timed out", "errorType": "Timeout"}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(body).encode()),
            }
        if self.always_fail or self.fail_next:
            self.fail_next = max(self.fail_next - 1, 0)
            body = {"ok": False, "error": "TRANSIENT", "retryable": True, "message": "injected outage"}
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}
        answer = pg_gateway.handler(request, FakeContext())
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}

    def count(self, operation: str, payment_id: str | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if c["operation"] == operation and (payment_id is None or c["paymentId"] == payment_id)
        )


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Platform:
    """Handles on the mocked deployment plus helpers that act like the API and the event sources."""

    gateway: FakeGateway
    queue_urls: dict[str, str]
    access: AccessRecorder = field(default_factory=AccessRecorder)
    delays: list[int] = field(default_factory=list)
    _published: list[dict[str, Any]] = field(default_factory=list)

    # --- AWS clients --------------------------------------------------------------------
    @property
    def ddb(self) -> Any:
        return aws.client("dynamodb")

    @property
    def sqs(self) -> Any:
        return aws.client("sqs")

    # --- data the API would write -------------------------------------------------------
    def create_campaign(
        self,
        *,
        goal: int = 100_000,
        funding_amount: int = 0,
        end_date: str | None = None,
        state: str = "OPEN",
        owner_email: str | None = "owner@example.com",
        **extra: Any,
    ) -> str:
        funding_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        item: dict[str, Any] = {
            "fundingId": funding_id,
            "ownerId": str(uuid.uuid4()),
            "title": "Solar lamps for Ulsan",
            "description": "Lamps",
            "goalAmount": goal,
            "fundingAmount": funding_amount,
            "minAmount": 1_000,
            "maxAmount": 1_000_000,
            "duration": 30,
            "startDate": iso(now - timedelta(days=1)),
            "endDate": end_date or iso(now + timedelta(days=30)),
            "status": "active",
            "state": state,
            "createdAt": iso(now),
            "updatedAt": iso(now),
        }
        if owner_email:
            item["ownerEmail"] = owner_email
        item.update(extra)
        self.ddb.put_item(TableName="fundings", Item=aws.to_attributes(item))
        return funding_id

    def create_payment(
        self,
        funding_id: str,
        amount: int = 10_000,
        *,
        state: str = "PENDING",
        created_at: str | None = None,
        email: str | None = "backer@example.com",
        publish: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """A payment as the API writes it; publishes payment.requested like the API does."""
        payment_id = str(uuid.uuid4())
        created = created_at or iso(datetime.now(UTC))
        item: dict[str, Any] = {
            "paymentId": payment_id,
            "fundingId": funding_id,
            "userId": str(uuid.uuid4()),
            "amount": amount,
            "paymentMethod": "card",
            "state": state,
            "createdAt": created,
            "updatedAt": created,
        }
        if email:
            item["email"] = email
        item.update(extra)
        self.ddb.put_item(TableName="payments", Item=aws.to_attributes(item))
        if publish:
            event = self.requested_event(item)
            aws.client("sns").publish(
                TopicArn=os.environ["PAYMENTS_TOPIC_ARN"],
                Message=json.dumps(event),
                MessageAttributes=contract.message_attributes(event),
            )
        return item

    @staticmethod
    def requested_event(payment: dict[str, Any]) -> dict[str, Any]:
        return contract.make_event(
            contract.EventType.PAYMENT_REQUESTED,
            payment_id=payment["paymentId"],
            funding_id=payment["fundingId"],
            user_id=payment["userId"],
            amount=payment["amount"],
            paymentMethod=payment["paymentMethod"],
            email=payment.get("email"),
        )

    def payment(self, payment_id: str) -> dict[str, Any]:
        item = aws.get_item("payments", {"paymentId": payment_id})
        assert item is not None
        return item

    def gateway_record(self, payment_id: str) -> dict[str, Any]:
        """The gateway's log entry for a payment ({} when the gateway never heard of it)."""
        return aws.get_item("idempotency", {"id": contract.gateway_record_id(payment_id)}) or {}

    def owed(self, state: str | None = None) -> list[dict[str, Any]]:
        """Payments in the sparse byOwed index (optionally of one owed state)."""
        states = [state] if state else [str(s) for s in contract.OWED_STATES]
        found: list[dict[str, Any]] = []
        for owed in states:
            found += aws.query(
                "payments",
                index=contract.PAYMENTS_BY_OWED_INDEX,
                key_condition="#o = :o",
                values={":o": owed},
                names={"#o": contract.OWED_ATTRIBUTE},
            )
        return found

    def campaign(self, funding_id: str) -> dict[str, Any]:
        item = aws.get_item("fundings", {"fundingId": funding_id})
        assert item is not None
        return item

    def payments_of(self, funding_id: str) -> list[dict[str, Any]]:
        return list(
            aws.query(
                "payments",
                index=contract.PAYMENTS_BY_FUNDING_INDEX,
                key_condition="fundingId = :f",
                values={":f": funding_id},
            )
        )

    def captured_sum(self, funding_id: str) -> int:
        return sum(p["amount"] for p in self.payments_of(funding_id) if p["state"] == "CAPTURED")

    def ledger(self, funding_id: str) -> list[dict[str, Any]]:
        return list(
            aws.query("transactions", index=None, key_condition="fundingId = :f", values={":f": funding_id})
        )

    # --- queues as Lambda event sources -------------------------------------------------
    def receive(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        """Receive a batch and shape it like the Lambda SQS event's Records."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_urls[queue],
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
            for m in response.get("Messages", [])
        ]

    def invoke_batch(
        self, function: str, records: list[dict[str, Any]], queue: str | None = None
    ) -> dict[str, Any]:
        """Call a queue consumer with `records`; delete successes, release failures (like ESM)."""
        result = MODULES[function].handler({"Records": records}, FakeContext())
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        url = self.queue_urls[queue or QUEUE_OF[function]]
        for record in records:
            if record["messageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        return result

    def pump(self, function: str, max_messages: int = 10) -> int:
        """Deliver one batch from the function's queue; returns how many records it held."""
        records = self.receive(QUEUE_OF[function], max_messages)
        if records:
            self.invoke_batch(function, records)
        return len(records)

    def run(
        self, *, functions: tuple[str, ...] = PIPELINE_ORDER, max_rounds: int = 60, strict: bool = True
    ) -> None:
        """Pump every consumer until all their queues are empty (strict: or fail after max_rounds)."""
        for _ in range(max_rounds):
            if not sum(self.pump(f) for f in functions):
                return
        if strict:
            raise AssertionError("the pipeline did not settle")

    def depth(self, queue: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_urls[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    # --- what was published -------------------------------------------------------------
    def published(self, event_type: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Every event published on either topic so far (optionally filtered)."""
        for queue in ("capture-payments", "capture-funding-target"):
            while True:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_urls[queue], MaxNumberOfMessages=10
                ).get("Messages", [])
                if not messages:
                    break
                for m in messages:
                    self._published.append(json.loads(m["Body"]))
                    self.sqs.delete_message(QueueUrl=self.queue_urls[queue], ReceiptHandle=m["ReceiptHandle"])
        return [
            e
            for e in self._published
            if (event_type is None or e["type"] == event_type)
            and all(e.get(k) == v for k, v in match.items())
        ]


def _create_tables() -> None:
    ddb = aws.client("dynamodb")
    for spec in contract.TABLES:
        key_schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        if spec.sort_key:
            key_schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
        kwargs: dict[str, Any] = {
            "TableName": os.environ[spec.env_var],
            "KeySchema": key_schema,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in spec.key_attributes],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if spec.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                    + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in spec.indexes
            ]
        ddb.create_table(**kwargs)


def _create_messaging() -> dict[str, str]:
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic_arns = {topic: sns.create_topic(Name=str(topic))["TopicArn"] for topic in contract.Topic}
    for topic, arn in topic_arns.items():
        assert arn == os.environ[contract.topic_env_var(topic)]
    urls: dict[str, str] = {}

    def queue(name: str, **attributes: str) -> str:
        urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return urls[name]

    def arn_of(name: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    def subscribe(topic: contract.Topic, name: str, events: tuple[contract.EventType, ...] | None) -> None:
        attributes = {"RawMessageDelivery": "true"}
        if events is not None:
            attributes["FilterPolicy"] = json.dumps({"type": [str(e) for e in events]})
        sns.subscribe(
            TopicArn=topic_arns[topic], Protocol="sqs", Endpoint=arn_of(name), Attributes=attributes
        )

    for dead_letter in DEAD_LETTER_QUEUES.values():
        queue(dead_letter)
    for _, fed in catalog.queue_consumers():
        attributes = {}
        if fed.queue in DEAD_LETTER_QUEUES:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arn_of(DEAD_LETTER_QUEUES[fed.queue]),
                    "maxReceiveCount": str(MAX_RECEIVE_COUNT),
                }
            )
        queue(fed.queue, **attributes)
        for topic in catalog.subscribed_topics(fed):
            subscribe(topic, fed.queue, catalog.events_on(fed, topic))
    for topic in contract.Topic:
        queue(f"capture-{topic}")
        subscribe(topic, f"capture-{topic}", None)
    assert urls[PROCESSING_QUEUE] == os.environ["PAYMENT_PROCESSING_QUEUE_URL"]
    assert urls[LEDGER_QUEUE] == os.environ[contract.ENV_LEDGER_QUEUE_URL]
    assert urls[LEDGER_DLQ] == os.environ[contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL]
    return urls


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """A fresh mocked deployment per test."""
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    access = AccessRecorder()
    real_client = aws.client

    def recording_client(service: str) -> Any:
        client = real_client(service)
        if not getattr(client, "_records_access", False):
            client.meta.events.register("before-parameter-build", access.on_botocore_call)
            client._records_access = True
        return client

    monkeypatch.setattr(aws, "client", recording_client)
    with mock_aws():
        aws.reset()
        _create_tables()
        urls = _create_messaging()
        aws.client("ses").verify_email_identity(EmailAddress=os.environ["SES_SENDER"])
        fake = FakeGateway(access)
        gateway.set_invoke(fake.invoke)
        try:
            yield Platform(gateway=fake, queue_urls=urls, access=access)
        finally:
            gateway.set_invoke(None)
            aws.reset()
    undeclared = access.undeclared()
    if undeclared:
        pytest.fail(describe(undeclared))


@pytest.fixture
def no_retry_delay(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record payment_retry's DelaySeconds but deliver at once (a test cannot wait 15 minutes)."""
    sqs = aws.client("sqs")
    original = sqs.send_message

    def send_message(**kwargs: Any) -> Any:
        if kwargs["QueueUrl"] == platform.queue_urls[PROCESSING_QUEUE]:
            platform.delays.append(int(kwargs.get("DelaySeconds", 0)))
        return original(**{**kwargs, "DelaySeconds": 0})

    monkeypatch.setattr(sqs, "send_message", send_message)
    return platform.delays


__all__ = ["FakeContext", "Platform", "campaign_closer", "iso", "reconciler"]
