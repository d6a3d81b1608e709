"""Make moto's DynamoDB behave as DynamoDB does under concurrency, and at DynamoDB's speed.

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
"""

from __future__ import annotations

import copy
import functools
import threading
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


def apply() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    if _APPLIED:
        return
    from moto.core import responses
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
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
