"""reconciler (the sweeper): finishes whatever the chain left owed, and redrives the ledger's DLQ."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Schedule, Sizing

SPEC = FunctionSpec(
    name="reconciler",
    trigger=Schedule("rate(5 minutes)"),
    environment=(
        c.PAYMENTS_TABLE.env_var,
        c.ENV_PAYMENTS_TOPIC_ARN,
        c.ENV_RECONCILE_AFTER_SECONDS,
        c.ENV_PG_GATEWAY_FUNCTION,
        c.ENV_LEDGER_QUEUE_URL,
        c.ENV_LEDGER_DEAD_LETTER_QUEUE_URL,
    ),
    access={
        # Query: stale PENDING/APPROVED and owed payments; UpdateItem: claims, voidedAt, clearing `owed`.
        c.PAYMENTS_TABLE.env_var: (
            f"dynamodb:Query@{c.PAYMENTS_BY_STATE_INDEX}",
            f"dynamodb:Query@{c.PAYMENTS_BY_OWED_INDEX}",
            "dynamodb:UpdateItem",
        ),
        c.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        c.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction",),
        # SendMessageBatch is authorized as sqs:SendMessage.
        c.ENV_LEDGER_QUEUE_URL: ("sqs:SendMessage",),
        # ChangeMessageVisibility: poison and unsent messages are made visible again at the end of the
        # run, so the DLQ's depth alarm does not flap to OK while they are hidden by the receive.
        c.ENV_LEDGER_DEAD_LETTER_QUEUE_URL: (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        ),
    },
    # Scheduled settlement (refunds, sweeps): one run plus one overlapping retry.
    sizing=Sizing(timeout_seconds=60, reserved_concurrency=2),
)
