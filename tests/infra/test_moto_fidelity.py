"""The emulator's DynamoDB is atomic under concurrency and its transactions cost what they touch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local import moto_fidelity

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
