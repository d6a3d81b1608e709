"""SQS batch consumption with partial batch responses (Powertools BatchProcessor).

A record whose handler raises is reported in `batchItemFailures`, so SQS redelivers only that
record and, after the queue's maxReceiveCount, moves it to the dead-letter queue. A poison
message (not a valid event envelope, or an event type this consumer does not handle) is
failed the same way, never silently dropped: it reaches the DLQ where an operator can see it,
and the log line says why.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared.contract import EnvelopeError, Metric, parse_event
from lambdas.shared.telemetry import correlated, count

RecordHandler = Callable[[dict[str, Any], SQSRecord], None]


class UnexpectedEventError(EnvelopeError):
    """A valid envelope of a type this consumer is not subscribed to (a routing mistake)."""


def parse_record(
    record: SQSRecord, accepted: Collection[str], logger: Logger, metrics: Metrics
) -> dict[str, Any]:
    """The record's event, or raise (after logging why) when it is poison."""
    try:
        event = parse_event(record.body)
        if event["type"] not in accepted:
            raise UnexpectedEventError(f"event type {event['type']!r} is not consumed here")
    except EnvelopeError as exc:
        logger.error(
            "poison message: failing the record so it reaches the dead-letter queue",
            extra={
                "messageId": record.message_id,
                "reason": str(exc),
                "receiveCount": record.attributes.approximate_receive_count,
                "bodyPrefix": (record.body or "")[:200],
            },
        )
        count(metrics, Metric.POISON_MESSAGES)
        raise
    return event


def consume(
    event: dict[str, Any],
    context: Any,
    handle: RecordHandler,
    *,
    accepted: Collection[str],
    logger: Logger,
    metrics: Metrics,
) -> dict[str, Any]:
    """Run `handle(event, record)` for every record; a raising record is reported as failed."""

    def record_handler(record: SQSRecord) -> None:
        parsed = parse_record(record, accepted, logger, metrics)
        with correlated(logger, parsed):
            try:
                handle(parsed, record)
            except Exception:
                logger.exception(
                    "record failed; SQS will redeliver it", extra={"messageId": record.message_id}
                )
                raise

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event, record_handler, processor, context))


def receive_count(record: SQSRecord) -> int:
    """How many times SQS has delivered this record (1 on first delivery)."""
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1
