"""ledger_recorder: the append-only audit log, one row per event."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Sizing, TopicQueue

SPEC = FunctionSpec(
    name="ledger_recorder",
    # Every event of every topic: the ledger's subscriptions carry no filter.
    trigger=TopicQueue("ledger", tuple(c.EventType)),
    environment=(c.TRANSACTIONS_TABLE.env_var,),
    access={
        # Conditional puts only (inside TransactWriteItems): the ledger is append-only.
        c.TRANSACTIONS_TABLE.env_var: ("dynamodb:PutItem",),
    },
    # The audit trail: capped and reserved like the rest of the money path (10 x 25-event batches).
    sizing=Sizing(
        timeout_seconds=30,
        batch_size=25,
        batching_window_seconds=1,
        maximum_concurrency=10,
        reserved_concurrency=10,
    ),
)
