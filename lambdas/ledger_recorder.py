"""ledger_recorder: append every event to the `transactions` table, once.

Trigger: SQS ledger (every event type on both topics). Out: nothing.

Item key: fundingId + recordKey (`<occurredAt>#<eventId>`, contract.ledger_record_key), so a
campaign's history reads in time order with one Query. The put is conditional on the key not
existing: a duplicate delivery, or a re-publication of a derived event (same eventId and
occurredAt, see lambdas.shared.events), is recognised and not written twice. Items are never
updated or deleted here: the log is append-only.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared import aws
from lambdas.shared.batch import consume
from lambdas.shared.config import env_str, require_environment
from lambdas.shared.contract import TRANSACTIONS_TABLE, EventType, ledger_record_key, utc_now_iso
from lambdas.shared.telemetry import function_logger, function_metrics

FUNCTION = "ledger_recorder"
ENVIRONMENT: tuple[str, ...] = (TRANSACTIONS_TABLE.env_var,)
OPTIONAL_ENVIRONMENT: tuple[str, ...] = ()
require_environment(ENVIRONMENT, function=FUNCTION)

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


def _record(event: dict[str, Any], record: SQSRecord) -> None:
    sort_key = TRANSACTIONS_TABLE.sort_key or "recordKey"
    if aws.put_new(env_str(TRANSACTIONS_TABLE.env_var), ledger_item(event), sort_key):
        logger.info("event recorded")
    else:
        logger.info("event already recorded; duplicate ignored")


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of any events → partial batch response."""
    return consume(event, context, _record, accepted=set(EventType), logger=logger, metrics=metrics)
