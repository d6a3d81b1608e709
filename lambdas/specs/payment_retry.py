"""payment_retry: re-sends dead-lettered payment requests with backoff, fails them at the limit."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import DeadLetters, FunctionSpec, Sizing

SPEC = FunctionSpec(
    name="payment_retry",
    trigger=DeadLetters("payment-processing"),
    environment=(
        c.PAYMENTS_TABLE.env_var,
        c.IDEMPOTENCY_TABLE.env_var,
        c.ENV_PAYMENTS_TOPIC_ARN,
        c.ENV_PAYMENT_PROCESSING_QUEUE_URL,
        c.ENV_PG_GATEWAY_FUNCTION,
        c.ENV_RETRY_MAX_ATTEMPTS,
    ),
    optional_environment=(c.ENV_RETRY_BASE_DELAY_SECONDS, c.ENV_RETRY_MAX_DELAY_SECONDS),
    access={
        # GetItem: the payment; UpdateItem: PENDING→FAILED, voidedAt, clearing `owed`.
        c.PAYMENTS_TABLE.env_var: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        # Powertools idempotency of the re-sends.
        c.IDEMPOTENCY_TABLE.env_var: (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_PAYMENT_PROCESSING_QUEUE_URL: ("sqs:SendMessage",),
        c.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
    },
    sizing=Sizing(timeout_seconds=30, maximum_concurrency=5, reserved_concurrency=5),
)
