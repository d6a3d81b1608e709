"""payment_processor: authorizes each requested payment at the gateway."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Sizing, TopicQueue

SPEC = FunctionSpec(
    name="payment_processor",
    trigger=TopicQueue("payment-processing", (c.EventType.PAYMENT_REQUESTED,)),
    environment=(c.PAYMENTS_TABLE.env_var, c.ENV_PAYMENTS_TOPIC_ARN, c.ENV_PG_GATEWAY_FUNCTION),
    access={
        # BatchGetItem: the batch's payments; UpdateItem: transitions, voidedAt, clearing `owed`.
        c.PAYMENTS_TABLE.env_var: ("dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
    },
    # Gateway calls per payment; capped so a burst does not overrun the gateway. A 1 s window
    # fills batches under load (fewer receives, deletes and invocations per payment) for at most
    # a second of added latency on an asynchronous path.
    sizing=Sizing(
        timeout_seconds=30, batching_window_seconds=1, maximum_concurrency=10, reserved_concurrency=10
    ),
)
