"""Run a side effect once per key, with Powertools idempotency on the shared idempotency table.

Records live in IDEMPOTENCY_TABLE (key `id`, TTL attribute `expiration`). Each operation gets
its own persistence layer (Powertools configures a layer once) and an explicit key prefix, so
keys never collide with the API's records in the same table. A failed call leaves no record,
so a retry runs it again; a successful one returns the stored result on a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import IDEMPOTENCY_TABLE

DEFAULT_EXPIRY_SECONDS = 14 * 24 * 3600
"""Longer than SQS's maximum retention, so no redelivery can outlive its record."""

_layers: dict[str, DynamoDBPersistenceLayer] = {}
aws.on_reset(_layers.clear)


def _layer(operation: str) -> DynamoDBPersistenceLayer:
    layer = _layers.get(operation)
    if layer is None:
        layer = _layers[operation] = DynamoDBPersistenceLayer(
            table_name=env_str(IDEMPOTENCY_TABLE.env_var),
            key_attr=IDEMPOTENCY_TABLE.partition_key,
            expiry_attr=IDEMPOTENCY_TABLE.ttl_attribute or "expiration",
            boto3_client=aws.client("dynamodb"),
        )
    return layer


def run_once(
    operation: str,
    function: Callable[..., Any],
    data: dict[str, Any],
    *,
    key: str,
    validate: str = "",
    context: Any = None,
    expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
) -> Any:
    """Call `function(data=data)` once per value of the JMESPath `key` over `data`.

    `validate` (JMESPath) makes a repeat with the same key but different payload an error
    (IdempotencyValidationError) instead of silently returning the first result.
    """
    config = IdempotencyConfig(
        event_key_jmespath=key,
        payload_validation_jmespath=validate,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_seconds,
    )
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)
    wrapped = idempotent_function(
        function,
        data_keyword_argument="data",
        persistence_store=_layer(operation),
        config=config,
        key_prefix=operation,
    )
    return wrapped(data=data)
