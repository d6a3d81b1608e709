"""Make moto's DynamoDB behave as DynamoDB does under concurrency, and moto's SQS and DynamoDB at
a speed that does not depend on how much they hold.

moto in server mode serves requests on many threads, but its DynamoDB backend was written for one:
- a conditional write checks its condition and then writes, with no lock between, so two racing
  conditional writes on one item can both succeed (DynamoDB makes each one atomic);
- `TransactWriteItems` backs up every table it touches with `copy.deepcopy` and, when the
  transaction is cancelled, puts those copies back, which silently undoes every other request's
  writes to those tables made meanwhile, and costs time proportional to the table's size
  (0.2 s at 100 rows, 3 s at 3,000: the ledger's conditional batches grew slower with every row).

`apply()` (called once by the emulator process, before it serves) fixes both: every DynamoDB
backend operation runs under one re-entrant lock (one item-level operation at a time, so
conditions and transactions are atomic, as on AWS), and a transaction backs up only the items it
touches and restores only those when it is cancelled. It also memoizes moto's per-request
listing of a response class's methods (`inspect.getmembers` on every call: 7% of the emulator's
time under load), which never changes while the process runs.

DynamoDB, speed (each figure measured on a table of 1,000 payments):
- moto answers every call through a generic serializer that walks the operation's output shape
  value by value, resolving attribute aliases on each: two thirds of a Query's time. For the
  item operations (GetItem … TransactWriteItems), whose results moto already builds in wire form
  (attribute-value maps, counts, keys; no timestamps, no blobs to encode), the top-level members
  of the output shape are written with `json.dumps` instead (the same body: a test compares both);
- a Query first sorts every item of the table (`all_items`), and an index Query then tests each
  one: the candidates are narrowed first (the partition's items for a table Query, the items
  whose partition attribute matches for an index Query), so moto sorts and tests only those.

SQS: moto checks each message it hands out against the queue's retention period by building the
queue's whole attribute map, which counts every message in the queue (visible, in flight,
delayed), each count reading the clock through a naive-datetime round trip: one ReceiveMessage
cost time proportional to the queue's depth, hence quadratic in a backlog (a quarter of the
emulator's CPU while 400 payments queued). The retention check reads the period directly, and
moto's SQS reads the clock with `time.time()` (the same instant, without the datetimes).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_APPLIED: list[bool] = []


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


class _TablesPassThrough:
    """Stands in for the `copy` module inside moto's DynamoDB models: a Table is not copied.

    moto's transaction code backs up whole tables with `copy.deepcopy(table)` and assigns the
    backup back on rollback; with this, the "backup" is the live table (the assignment is a no-op)
    and `transact_write_items` below restores the touched items itself. Anything else is copied
    as before."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _item_key(backend: Any, operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(table name, key attributes) an operation of a transaction writes or checks."""
    _, op = next(iter(operation.items()))
    name = op.get("TableName")
    if not name or name not in backend.tables:
        return None
    if "Key" in op:
        return name, op["Key"]
    table = backend.tables[name]
    attrs = op.get("Item") or {}
    key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs.get(table.range_key_attr)
    if any(value is None for value in key.values()):
        return None
    return name, key


def _transact_with_item_backups(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[str, dict[str, Any], Any]] = []
        for operation in transact_items[:100]:
            target = _item_key(self, operation)
            if target is None:
                continue
            name, key = target
            try:
                current = self.get_item(name, key)
            except Exception:  # a malformed key: the original call reports it
                continue
            backups.append((name, key, copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except Exception:
            for name, key, before in reversed(backups):
                if before is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, before.to_json()["Attributes"])
            raise

    return transact_write_items


DYNAMODB_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
"""The operations whose moto results are already in wire form (see the module's docstring)."""


def _wire_form_results(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
        if (
            self.operation_name in DYNAMODB_ITEM_OPERATIONS
            and self.service_model.service_name == "dynamodb"
            and isinstance(result, dict)
            and self.operation_model.output_shape is not None
        ):
            members = self.operation_model.output_shape.members
            body = {key: value for key, value in result.items() if key in members and value is not None}
            resp["body"] = json.dumps(body, separators=(",", ":"))
            resp["headers"]["Content-Type"] = self._get_protocol_specific_content_type()
            return resp
        return original(self, resp, result)

    return _serialize_result


def _has_value(item: Any, attribute: str, value: Any) -> bool:
    """Does `item` carry `attribute` = `value` (a sparse index leaves it out of some items)."""
    held = item.attrs.get(attribute)
    return held is not None and bool(held == value)


def _narrowed_query(original: Callable[..., Any]) -> Callable[..., Any]:
    """Table.query over only the items that can match its partition condition."""

    @functools.wraps(original)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        conditions = kwargs.get("hash_key_conditions") or []
        if index_name:
            if not conditions:
                return original(self, hash_key, *args, **kwargs)
            attribute, value = conditions[0]
            candidates = [
                item
                for partition in self.items.values()
                for item in (partition.values() if self.range_key_attr else (partition,))
                if _has_value(item, attribute, value)
            ]
        else:
            partition = self.items.get(hash_key)
            if partition is None:
                candidates = []
            else:
                candidates = list(partition.values()) if self.range_key_attr else [partition]
        self.all_items = lambda: candidates  # read once by the original, under the backend's lock
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return query


def _fast_clock(original: Callable[..., float], scale: float) -> Callable[..., float]:
    """moto's `unix_time`/`unix_time_millis` for "now" without building datetimes."""

    @functools.wraps(original)
    def clock(dt: Any = None) -> float:
        if dt is not None:
            return original(dt)
        return time.time() * scale

    return clock


def _retention_from_attribute(backend: Any, queue_name: str, message: Any) -> bool:
    """Is `message` still within its queue's retention period (O(1), unlike moto's own)."""
    queue = backend.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > time.time())


def _apply_sqs() -> None:
    from moto.sqs import models as sqs_models

    sqs_models.unix_time = _fast_clock(sqs_models.unix_time, 1.0)
    sqs_models.unix_time_millis = _fast_clock(sqs_models.unix_time_millis, 1000.0)
    backend: Any = sqs_models.SQSBackend
    backend.is_message_valid_based_on_retention_period = _retention_from_attribute


def apply() -> None:
    """Patch moto's DynamoDB and SQS backends in this process (idempotent)."""
    if _APPLIED:
        return
    _apply_sqs()
    from moto.core import responses
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    BaseJSONSerializer._serialize_result = _wire_form_results(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_result
    )
    Table.query = _narrowed_query(Table.query)  # type: ignore[method-assign]
    models.copy = _TablesPassThrough(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _transact_with_item_backups(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
    for name, member in list(vars(DynamoDBBackend).items()):
        if (
            not name.startswith("_")
            and callable(member)
            and not isinstance(member, (staticmethod, classmethod))
        ):
            setattr(DynamoDBBackend, name, _serialized(member))
    _APPLIED.append(True)
