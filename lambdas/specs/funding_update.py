"""funding_update: captures approved payments and adds them to their campaign's total."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Sizing, TopicQueue

SPEC = FunctionSpec(
    name="funding_update",
    trigger=TopicQueue("funding-update", (c.EventType.PAYMENT_APPROVED,)),
    environment=(
        c.FUNDINGS_TABLE.env_var,
        c.PAYMENTS_TABLE.env_var,
        c.ENV_PAYMENTS_TOPIC_ARN,
        c.ENV_FUNDING_TARGET_TOPIC_ARN,
    ),
    access={
        # BatchGetItem: the campaign (with its payments); UpdateItem: its share of the capture
        # transaction, goalPublishedAt.
        c.FUNDINGS_TABLE.env_var: ("dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
        # BatchGetItem: the batch's payments; UpdateItem: captures, cancelRequestedAt, clearing `owed`.
        c.PAYMENTS_TABLE.env_var: ("dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_FUNDING_TARGET_TOPIC_ARN: ("sns:Publish",),
    },
    # A 1 s window fills batches of up to 99: a hot campaign's payments are captured in one
    # transaction (1 campaign + 99 payments = DynamoDB's 100-item limit), one campaign write per 99.
    sizing=Sizing(
        timeout_seconds=30,
        batch_size=99,
        batching_window_seconds=1,
        maximum_concurrency=10,
        reserved_concurrency=10,
    ),
)
