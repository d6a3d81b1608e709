"""campaign_closer: closes campaigns past their deadline and refunds the failed ones."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Schedule, Sizing

SPEC = FunctionSpec(
    name="campaign_closer",
    trigger=Schedule("rate(5 minutes)"),
    environment=(
        c.FUNDINGS_TABLE.env_var,
        c.PAYMENTS_TABLE.env_var,
        c.ENV_PAYMENTS_TOPIC_ARN,
        c.ENV_FUNDING_TARGET_TOPIC_ARN,
        c.ENV_PG_GATEWAY_FUNCTION,
    ),
    access={
        # Query: due and unfinished campaigns; GetItem: the refund check; UpdateItem: close, markers,
        # and the campaign's share of each refund transaction.
        c.FUNDINGS_TABLE.env_var: (
            f"dynamodb:Query@{c.FUNDINGS_BY_STATE_INDEX}",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
        ),
        # Query: a campaign's captured / still-owed refunded payments; UpdateItem: refunds, `owed`.
        c.PAYMENTS_TABLE.env_var: (f"dynamodb:Query@{c.PAYMENTS_BY_FUNDING_INDEX}", "dynamodb:UpdateItem"),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_FUNDING_TARGET_TOPIC_ARN: ("sns:Publish",),
        c.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
    },
    # Scheduled settlement (refunds, sweeps): one run plus one overlapping retry.
    sizing=Sizing(timeout_seconds=300, memory_mb=512, reserved_concurrency=2),
)
