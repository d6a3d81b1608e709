"""ledger_recorder: append every event to the `transactions` table, once; never change a row.

Trigger: SQS ledger (every event type on both topics). Out: nothing.

Item key: fundingId + recordKey (`<occurredAt>#<eventId>`, contract.ledger_record_key), so a
campaign's history reads in time order with one Query, and an event has exactly one possible
row. Rows are written with conditional puts (`attribute_not_exists`): TransactWriteItems of up
to 100 Puts per call (one call per batch; the ledger is the busiest consumer). A cancelled
transaction says, per item, why: ConditionalCheckFailed means the row exists: a duplicate
delivery or a re-publication of a derived event (same eventId and occurredAt, see
lambdas.shared.events), dropped; if the stored row's `event` differs from the new one, a
different event reused the key: logged as an error and counted (LedgerConflicts), and the first
row is kept. A row is never overwritten, updated or deleted. Transaction conflicts and
throttling are retried with jittered backoff; rows still unwritten fail their records (partial
batch response), so SQS redelivers exactly those. Poison records fail individually.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.batch import EventType as BatchEventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared.batch import parse_record
from lambdas.shared.config import env_str, require_environment
from lambdas.shared.contract import TRANSACTIONS_TABLE, EventType, Metric, ledger_record_key, utc_now_iso
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.specs.ledger_recorder import SPEC

require_environment(SPEC.environment, function=SPEC.name)

TRANSACTION_LIMIT = 100
"""DynamoDB's TransactWriteItems maximum."""
_ATTEMPTS = 5
"""Calls per chunk that make no progress (conflicts, throttling) before its rows fail their records."""
_RETRYABLE = {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
"""Cancellation codes of an item that may succeed on a retry ('None': cancelled because of another)."""

_COPIED = ("eventId", "type", "occurredAt", "paymentId", "userId", "amount")

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)

Key = tuple[str, str]


def ledger_item(event: dict[str, Any]) -> dict[str, Any]:
    """The ledger row for an event: key, the queryable fields, and the event verbatim."""
    item = {
        TRANSACTIONS_TABLE.partition_key: event["fundingId"],
        TRANSACTIONS_TABLE.sort_key or "recordKey": ledger_record_key(event),
        "recordedAt": utc_now_iso(),
        "event": json.dumps(event, separators=(",", ":"), sort_keys=True),
    }
    item.update({k: event[k] for k in _COPIED if event.get(k) is not None})
    return item


def _put(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": aws.to_attributes(item),
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": TRANSACTIONS_TABLE.partition_key},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _duplicate(item: dict[str, Any], stored_raw: Any) -> None:
    """A row with this key exists: fine if it is the same event; never overwritten either way."""
    stored = aws.from_attributes(stored_raw) if isinstance(stored_raw, dict) and stored_raw else {}
    if stored and stored.get("event") != item["event"]:
        logger.error(
            "ledger key reused by a different event; the first row is kept",
            extra={
                "fundingId": item[TRANSACTIONS_TABLE.partition_key],
                "recordKey": item[TRANSACTIONS_TABLE.sort_key or "recordKey"],
                "storedEvent": stored.get("event"),
                "newEvent": item["event"],
            },
        )
        count(metrics, Metric.LEDGER_CONFLICTS)


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.05 * 2**attempt))


def _write_chunk(table: str, chunk: dict[Key, dict[str, Any]]) -> set[Key]:
    """Write one chunk (≤ 100 rows) with conditional puts; returns keys left unwritten.

    A transaction is all or nothing, so rows that block it are set aside: duplicates are
    dropped, rows in conflict (or throttled) are retried after the others went in, and a row
    DynamoDB refuses outright fails alone. Only rows that make no progress for `_ATTEMPTS`
    calls stay unwritten.
    """
    groups = [dict(chunk)]
    unwritten: set[Key] = set()
    while groups:
        pending = groups.pop(0)
        stalled = 0
        while pending and stalled < _ATTEMPTS:
            keys = list(pending)
            try:
                aws.client("dynamodb").transact_write_items(
                    TransactItems=[_put(table, pending[k]) for k in keys]
                )
                pending = {}
                break
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons") or []
                if aws.error_code(exc) != "TransactionCanceledException" or len(reasons) != len(keys):
                    logger.warning(
                        "ledger write failed", extra={"error": aws.error_code(exc), "attempt": stalled + 1}
                    )
                    stalled += 1
                    _backoff(stalled)
                    continue
            blocked: dict[Key, dict[str, Any]] = {}
            for key, reason in zip(keys, reasons, strict=True):
                code = str(reason.get("Code") or "None")
                if code == "ConditionalCheckFailed":
                    _duplicate(pending.pop(key), reason.get("Item"))
                elif code in _RETRYABLE and code != "None":
                    blocked[key] = pending.pop(key)
                elif code not in _RETRYABLE:
                    logger.error(
                        "ledger row refused",
                        extra={"recordKey": key[1], "code": code, "message": reason.get("Message")},
                    )
                    pending.pop(key)
                    unwritten.add(key)
            if blocked and pending:
                groups.append(blocked)  # let the others in first, then retry these
            elif blocked:
                pending = blocked
                stalled += 1
                _backoff(stalled)
            elif len(pending) == len(keys):  # cancelled with no reason we can act on
                stalled += 1
                _backoff(stalled)
        unwritten |= set(pending)
    return unwritten


def _write(table: str, items: dict[Key, dict[str, Any]]) -> set[Key]:
    """Write every row, ≤ 100 per TransactWriteItems; returns the keys not written."""
    failed: set[Key] = set()
    entries = list(items.items())
    for start in range(0, len(entries), TRANSACTION_LIMIT):
        failed |= _write_chunk(table, dict(entries[start : start + TRANSACTION_LIMIT]))
    return failed


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of any events → partial batch response."""
    staged: dict[Key, dict[str, Any]] = {}
    messages_of: dict[Key, list[str]] = {}

    def stage(record: SQSRecord) -> None:
        parsed = parse_record(record, set(EventType), logger, metrics)
        key = (parsed["fundingId"], ledger_record_key(parsed))
        item = ledger_item(parsed)
        if key in staged and staged[key]["event"] != item["event"]:
            _duplicate(item, aws.to_attributes(staged[key]))  # two different events, one key, same batch
            return
        staged.setdefault(key, item)
        messages_of.setdefault(key, []).append(record.message_id)

    processor = BatchProcessor(event_type=BatchEventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=event.get("Records", []), handler=stage):
        processor.process()
    response: dict[str, Any] = dict(processor.response())
    failed = _write(env_str(TRANSACTIONS_TABLE.env_var), staged) if staged else set()
    for key in failed:
        for message_id in messages_of[key]:
            response["batchItemFailures"].append({"itemIdentifier": message_id})
    logger.info(
        "events recorded",
        extra={
            "recorded": len(staged) - len(failed),
            "failed": len(failed),
            "records": len(event.get("Records", [])),
        },
    )
    return response
