"""Cached boto3 clients and DynamoDB helpers on the low-level client.

The low-level client (not `boto3.resource`) keeps cold starts short. Clients are created on
first use and cached for the life of the execution environment; `reset()` drops them (tests
call it when they start a fresh moto mock, since a client created before the mock would talk to
the real endpoint).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_clients: dict[str, Any] = {}
_reset_hooks: list[Callable[[], None]] = []
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def client(service: str) -> Any:
    """A cached boto3 client for `service`."""
    found = _clients.get(service)
    if found is None:
        found = _clients[service] = boto3.client(service, region_name=os.environ.get("AWS_REGION"))
    return found


def on_reset(hook: Callable[[], None]) -> None:
    """Register a cache to clear when `reset()` runs."""
    _reset_hooks.append(hook)


def reset() -> None:
    """Forget every cached client and lazily built helper (tests; never needed in Lambda)."""
    _clients.clear()
    for hook in _reset_hooks:
        hook()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


# --- DynamoDB -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values."""
    return {k: _serializer.serialize(v) for k, v in values.items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → Python values (integral numbers become int)."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def get_item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """A strongly consistent read; None when absent."""
    response = client("dynamodb").get_item(TableName=table, Key=to_attributes(key), ConsistentRead=True)
    item = response.get("Item")
    return from_attributes(item) if item else None


BATCH_GET_LIMIT = 100
"""DynamoDB's BatchGetItem maximum (keys per call, all tables together)."""


def batch_get_many(wanted: dict[str, tuple[str, list[str]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Strongly consistent reads from several tables in as few BatchGetItem calls as possible.

    `wanted` is {table: (key attribute, ids)}; the answer {table: {id: item}} (absent ids are
    simply missing). Keys of all tables share each call's 100-key budget, so a campaign and its
    99 payments are one call. Unprocessed keys (throttling) are asked again, with a short backoff.
    """
    found: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in wanted}
    keys = [(table, key_name, i) for table, (key_name, ids) in wanted.items() for i in dict.fromkeys(ids)]
    ddb = client("dynamodb")
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending: dict[str, Any] = {}
        for table, key_name, i in keys[start : start + BATCH_GET_LIMIT]:
            pending.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(
                to_attributes({key_name: i})
            )
        attempt = 0
        while pending:
            response = ddb.batch_get_item(RequestItems=pending)
            for table, raws in response.get("Responses", {}).items():
                key_name = wanted[table][0]
                for raw in raws:
                    item = from_attributes(raw)
                    found[table][item[key_name]] = item
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                attempt += 1
                time.sleep(min(0.05 * 2**attempt, 1.0))
    return found


def batch_get(table: str, key_name: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Strongly consistent reads of any number of items of one table by key, as {id: item}."""
    return batch_get_many({table: (key_name, ids)})[table]


def update_item(
    table: str,
    key: dict[str, Any],
    update: str,
    values: dict[str, Any],
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """An update returning the new item, or None when `condition` did not hold."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": to_attributes(key),
        "UpdateExpression": update,
        "ExpressionAttributeValues": to_attributes(values),
        "ReturnValues": "ALL_NEW",
    }
    if condition:
        kwargs["ConditionExpression"] = condition
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        response = client("dynamodb").update_item(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return from_attributes(response.get("Attributes", {}))


def update_or_current(
    table: str,
    key: dict[str, Any],
    update: str,
    values: dict[str, Any],
    *,
    condition: str,
    names: dict[str, str] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A conditional update: (new item, None) when `condition` held, else (None, current item).

    The current item comes back with the refusal (ReturnValuesOnConditionCheckFailure=ALL_OLD),
    so the loser of a race learns what won without a second read. It is None when absent.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": to_attributes(key),
        "UpdateExpression": update,
        "ExpressionAttributeValues": to_attributes(values),
        "ConditionExpression": condition,
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        response = client("dynamodb").update_item(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            current = exc.response.get("Item")
            return None, from_attributes(current) if isinstance(current, dict) and current else None
        raise
    return from_attributes(response.get("Attributes", {})), None


def cancellation_codes(exc: BaseException) -> list[str]:
    """Per-item codes of a cancelled transaction ('None' for an item that was fine), in item order."""
    if not isinstance(exc, ClientError):
        return []
    return [str(reason.get("Code") or "None") for reason in exc.response.get("CancellationReasons") or []]


def put_new(table: str, item: dict[str, Any], key_attribute: str) -> bool:
    """Put `item` unless an item with its key exists. Returns False for a duplicate."""
    try:
        client("dynamodb").put_item(
            TableName=table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": key_attribute},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def query(
    table: str,
    *,
    index: str | None,
    key_condition: str,
    values: dict[str, Any],
    names: dict[str, str] | None = None,
    filter_expression: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item matching a query, following pagination (at most `limit` items)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": to_attributes(values),
    }
    if index:
        kwargs["IndexName"] = index
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    yielded = 0
    while True:
        response = client("dynamodb").query(**kwargs)
        for raw in response.get("Items", []):
            yield from_attributes(raw)
            yielded += 1
            if limit is not None and yielded >= limit:
                return
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last
