"""Logger and Metrics the same way in every function (Powertools; no Tracer, for cold start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.shared.contract import METRICS_NAMESPACE, Metric

_CORRELATION_KEYS = ("paymentId", "fundingId", "eventId", "eventType")


def function_logger(service: str) -> Logger:
    """A JSON logger whose records carry the service (function) name."""
    return Logger(service=service)


def function_metrics(service: str) -> Metrics:
    """EMF metrics in the platform namespace, dimension `service`."""
    return Metrics(namespace=METRICS_NAMESPACE, service=service)


def count(metrics: Metrics, metric: Metric, value: int = 1) -> None:
    """Add a Count metric."""
    if value:
        metrics.add_metric(name=str(metric), unit=MetricUnit.Count, value=value)


def amount(metrics: Metrics, metric: Metric, value: int) -> None:
    """Add a money metric (unit None: an amount in the smallest currency unit)."""
    if value:
        metrics.add_metric(name=str(metric), unit=MetricUnit.NoUnit, value=value)


@contextmanager
def correlated(logger: Logger, event: dict[str, Any]) -> Iterator[None]:
    """Log lines inside carry the event's paymentId (the correlation id), fundingId and eventId."""
    keys = {
        "paymentId": event.get("paymentId"),
        "fundingId": event.get("fundingId"),
        "eventId": event.get("eventId"),
        "eventType": event.get("type"),
    }
    logger.append_keys(**{k: v for k, v in keys.items() if v})
    logger.set_correlation_id(event.get("paymentId"))
    try:
        yield
    finally:
        logger.remove_keys(list(_CORRELATION_KEYS))
        logger.set_correlation_id(None)
