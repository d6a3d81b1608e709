"""transaction_check: cancels and voids approved payments of a campaign that closed."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Sizing, TopicQueue

SPEC = FunctionSpec(
    name="transaction_check",
    trigger=TopicQueue(
        "transaction-check", (c.EventType.PAYMENT_CANCEL_REQUESTED, c.EventType.FUNDING_GOAL_REACHED)
    ),
    environment=(c.PAYMENTS_TABLE.env_var, c.ENV_PAYMENTS_TOPIC_ARN, c.ENV_PG_GATEWAY_FUNCTION),
    access={
        # GetItem: the payment; UpdateItem: the claim, voidedAt, clearing `owed`;
        # Query: a campaign's payments.
        c.PAYMENTS_TABLE.env_var: (
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            f"dynamodb:Query@{c.PAYMENTS_BY_FUNDING_INDEX}",
        ),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
    },
    sizing=Sizing(timeout_seconds=60, maximum_concurrency=5, reserved_concurrency=5),
)
