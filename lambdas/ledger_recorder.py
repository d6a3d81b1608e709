"""ledger_recorder: append every event to the `transactions` table, once.

Trigger: SQS ledger (every event type on both topics). Out: nothing.

Item key: fundingId + recordKey (`<occurredAt>#<eventId>`, contract.ledger_record_key), so a
campaign's history reads in time order with one Query, and an event has exactly one possible
row. The batch is written with BatchWriteItem (25 rows per call) instead of one PutItem per
event: the ledger is the busiest consumer (every event of both topics), and batching cuts its
DynamoDB calls per payment from about three to about one eighth. A duplicate delivery or a
re-publication of a derived event (same eventId and occurredAt, see lambdas.shared.events)
lands on the same key and rewrites the identical event, so the log still holds each event
exactly once; rows are never updated otherwise or deleted. Poison records fail individually
(Powertools BatchProcessor); rows DynamoDB leaves unprocessed after retries fail their records,
so SQS redelivers exactly those.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.batch import EventType as BatchEventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared.batch import parse_record
from lambdas.shared.config import env_str, require_environment
from lambdas.shared.contract import TRANSACTIONS_TABLE, EventType, ledger_record_key, utc_now_iso
from lambdas.shared.telemetry import function_logger, function_metrics

FUNCTION = "ledger_recorder"
ENVIRONMENT: tuple[str, ...] = (TRANSACTIONS_TABLE.env_var,)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

_BATCH_WRITE_LIMIT = 25
"""DynamoDB's BatchWriteItem maximum."""
_ATTEMPTS = 4

_COPIED = ("eventId", "type", "occurredAt", "paymentId", "userId", "amount")

logger = function_logger(FUNCTION)
metrics = function_metrics(FUNCTION)


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


def _write(table: str, items: dict[tuple[str, str], dict[str, Any]]) -> set[tuple[str, str]]:
    """BatchWriteItem every row (25 per call, unprocessed rows retried); returns keys not written."""
    sort_key = TRANSACTIONS_TABLE.sort_key or "recordKey"
    dynamodb = aws.client("dynamodb")
    pending = list(items.items())
    failed: set[tuple[str, str]] = set()
    for start in range(0, len(pending), _BATCH_WRITE_LIMIT):
        chunk = dict(pending[start : start + _BATCH_WRITE_LIMIT])
        requests = [{"PutRequest": {"Item": aws.to_attributes(item)}} for item in chunk.values()]
        for attempt in range(_ATTEMPTS):
            try:
                response = dynamodb.batch_write_item(RequestItems={table: requests})
            except ClientError as exc:
                logger.warning(
                    "batch write failed", extra={"error": aws.error_code(exc), "attempt": attempt + 1}
                )
                response = {"UnprocessedItems": {table: requests}}
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if not requests:
                break
            time.sleep(0.05 * 2**attempt)
        for request in requests:
            item = aws.from_attributes(request["PutRequest"]["Item"])
            failed.add((item[TRANSACTIONS_TABLE.partition_key], item[sort_key]))
    return failed


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of any events → partial batch response."""
    staged: dict[tuple[str, str], dict[str, Any]] = {}
    messages_of: dict[tuple[str, str], list[str]] = {}

    def stage(record: SQSRecord) -> None:
        parsed = parse_record(record, set(EventType), logger, metrics)
        key = (parsed["fundingId"], ledger_record_key(parsed))
        staged.setdefault(key, ledger_item(parsed))
        messages_of.setdefault(key, []).append(record.message_id)

    processor = BatchProcessor(event_type=BatchEventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=event.get("Records", []), handler=stage):
        processor.process()
    response = processor.response()
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
