"""The emulator's DynamoDB is atomic under concurrency and its transactions cost what they touch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from toolchain.embedded import moto_fidelity

REGION = "ap-northeast-2"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    moto_fidelity.apply()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        for name in ("items", "ledger"):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client


def _backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


def test_a_cancelled_transaction_restores_the_items_it_wrote_and_keeps_the_table(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="items", Item={"id": {"S": "a"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="ledger", Item={"id": {"S": "row"}, "v": {"S": "first"}})
    table = _backend().tables["items"]
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "items",
                        "Key": {"id": {"S": "a"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": "items", "Item": {"id": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": "ledger",
                        "Item": {"id": {"S": "row"}, "v": {"S": "second"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert dynamodb.get_item(TableName="items", Key={"id": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    assert "Item" not in dynamodb.get_item(TableName="items", Key={"id": {"S": "new"}})
    assert dynamodb.get_item(TableName="ledger", Key={"id": {"S": "row"}})["Item"]["v"] == {"S": "first"}
    # The live table object survives the rollback: writes other requests made meanwhile stay.
    assert _backend().tables["items"] is table


def test_a_committed_transaction_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "items",
                    "Item": {"id": {"S": f"i{i}"}},
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            }
            for i in range(25)
        ]
    )
    assert dynamodb.scan(TableName="items")["Count"] == 25


def test_racing_conditional_writes_never_both_succeed(dynamodb: Any) -> None:
    """An optimistic counter: each success must have seen the value it replaced (no lost update)."""
    dynamodb.put_item(TableName="items", Item={"id": {"S": "counter"}, "n": {"N": "0"}})
    successes: list[int] = []
    lock = threading.Lock()

    def bump() -> None:
        done = 0
        while done < 25:
            seen = int(dynamodb.get_item(TableName="items", Key={"id": {"S": "counter"}})["Item"]["n"]["N"])
            try:
                dynamodb.update_item(
                    TableName="items",
                    Key={"id": {"S": "counter"}},
                    UpdateExpression="SET n = :next",
                    ConditionExpression="n = :seen",
                    ExpressionAttributeValues={":next": {"N": str(seen + 1)}, ":seen": {"N": str(seen)}},
                )
            except ClientError:
                continue
            done += 1
        with lock:
            successes.append(done)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = int(dynamodb.get_item(TableName="items", Key={"id": {"S": "counter"}})["Item"]["n"]["N"])
    assert final == sum(successes) == 150


@pytest.fixture
def sqs() -> Iterator[Any]:
    moto_fidelity.apply()
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def _sqs_queue(name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    return sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(name)


def test_a_receive_does_not_count_the_whole_queue_per_message(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto built the queue's attribute map (counting every message) for each message it handed out."""
    from moto.sqs.models import Queue

    url = sqs.create_queue(QueueName="deep")["QueueUrl"]
    for start in range(0, 200, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
        )
    built: list[int] = []
    original = Queue.attributes

    def counting(self: Any) -> Any:
        built.append(1)
        return original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "attributes", property(counting))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    assert built == []


def test_a_message_past_its_queue_retention_is_not_delivered(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    for message in _sqs_queue("short")._messages:
        if message.body == "old":
            message.sent_timestamp -= 120_000
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert bodies == []
    sqs.send_message(QueueUrl=url, MessageBody="fresh")
    _sqs_queue("short")._messages = [m for m in _sqs_queue("short")._messages if m.body == "fresh"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])]
    assert bodies == ["fresh"]


def _item_calls(client: Any) -> list[dict[str, Any]]:
    """One answer of each item operation the system makes (ResponseMetadata dropped)."""
    table = "wide"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "owed", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byState",
                "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {  # sparse: only the items that carry `owed`
                "IndexName": "byOwed",
                "KeySchema": [{"AttributeName": "owed", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    answers: list[dict[str, Any]] = []

    def keep(answer: dict[str, Any]) -> None:
        answer.pop("ResponseMetadata", None)
        answers.append(answer)

    for n in range(12):
        item = {
            "pk": {"S": f"p{n % 3}"},
            "sk": {"S": f"{n:03d}"},
            "state": {"S": "OPEN" if n % 2 else "DONE"},
            **({"owed": {"S": "DONE"}} if n % 3 == 0 else {}),
            "amount": {"N": str(n * 1000)},
            "tags": {"SS": ["a", f"t{n}"]},
            "meta": {"M": {"ok": {"BOOL": True}, "none": {"NULL": True}, "list": {"L": [{"N": "1"}]}}},
        }
        keep(client.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD"))
    keep(client.get_item(TableName=table, Key={"pk": {"S": "p1"}, "sk": {"S": "001"}}))
    keep(client.get_item(TableName=table, Key={"pk": {"S": "p9"}, "sk": {"S": "001"}}))
    keep(
        client.query(
            TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}}
        )
    )
    keep(
        client.query(
            TableName=table,
            IndexName="byState",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":s": {"S": "OPEN"}},
            Limit=2,
            ReturnConsumedCapacity="TOTAL",
        )
    )
    keep(
        client.query(
            TableName=table,
            IndexName="byOwed",
            KeyConditionExpression="owed = :s",
            ExpressionAttributeValues={":s": {"S": "DONE"}},
        )
    )
    keep(client.scan(TableName=table, Limit=5, Select="COUNT"))
    keep(
        client.update_item(
            TableName=table,
            Key={"pk": {"S": "p1"}, "sk": {"S": "001"}},
            UpdateExpression="SET amount = amount + :one REMOVE tags",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
    )
    keep(
        client.delete_item(
            TableName=table, Key={"pk": {"S": "p2"}, "sk": {"S": "002"}}, ReturnValues="ALL_OLD"
        )
    )
    keep(
        client.batch_get_item(
            RequestItems={
                table: {
                    "Keys": [{"pk": {"S": "p0"}, "sk": {"S": "000"}}, {"pk": {"S": "p0"}, "sk": {"S": "003"}}]
                }
            }
        )
    )
    keep(
        client.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}}]},
            ReturnItemCollectionMetrics="SIZE",
        )
    )
    keep(
        client.transact_get_items(
            TransactItems=[{"Get": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}}]
        )
    )
    keep(
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}}]
        )
    )
    client.delete_table(TableName=table)
    return answers


def test_item_operations_answer_exactly_what_moto_serializer_answers(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire-form shortcut for item operations changes no answer boto3 sees."""
    from moto.core.serialize import BaseJSONSerializer

    fast = _item_calls(dynamodb)
    monkeypatch.setattr(
        BaseJSONSerializer, "_serialize_result", BaseJSONSerializer._serialize_result.__wrapped__
    )
    assert _item_calls(dynamodb) == fast


def test_a_query_answers_only_its_partition_in_key_order(dynamodb: Any) -> None:
    for n in (3, 1, 2):
        dynamodb.put_item(TableName="items", Item={"id": {"S": f"id{n}"}, "v": {"N": str(n)}})
    answer = dynamodb.query(
        TableName="items", KeyConditionExpression="id = :id", ExpressionAttributeValues={":id": {"S": "id2"}}
    )
    assert answer["Items"] == [{"id": {"S": "id2"}, "v": {"N": "2"}}]
    missing = dynamodb.query(
        TableName="items", KeyConditionExpression="id = :id", ExpressionAttributeValues={":id": {"S": "nope"}}
    )
    assert missing["Items"] == []
