"""notifier: emails backers and creators about their payments and campaigns."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Sizing, TopicQueue

SPEC = FunctionSpec(
    name="notifier",
    trigger=TopicQueue(
        "notifications",
        (
            c.EventType.FUNDING_GOAL_REACHED,
            c.EventType.FUNDING_FAILED,
            c.EventType.PAYMENT_DECLINED,
            c.EventType.PAYMENT_FAILED,
            c.EventType.PAYMENT_CANCELLED,
            c.EventType.PAYMENT_REFUNDED,
        ),
    ),
    environment=(
        c.FUNDINGS_TABLE.env_var,
        c.PAYMENTS_TABLE.env_var,
        c.IDEMPOTENCY_TABLE.env_var,
    ),
    optional_environment=(c.ENV_SES_SENDER, c.ENV_COGNITO_USER_POOL_ID),
    access={
        c.FUNDINGS_TABLE.env_var: ("dynamodb:GetItem",),
        c.PAYMENTS_TABLE.env_var: ("dynamodb:GetItem",),
        # Powertools idempotency: one email per eventId.
        c.IDEMPOTENCY_TABLE.env_var: (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ),
        c.ENV_SES_SENDER: ("ses:SendEmail",),
        c.ENV_COGNITO_USER_POOL_ID: ("cognito-idp:ListUsers",),
    },
    sizing=Sizing(timeout_seconds=30, maximum_concurrency=5),
)
