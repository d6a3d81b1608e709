"""pg_gateway: the (simulated) payment gateway the money path invokes synchronously."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, InvokedOnly, Sizing

SPEC = FunctionSpec(
    name="pg_gateway",
    # Invoked synchronously by the functions that talk to the gateway.
    trigger=InvokedOnly(),
    environment=(c.IDEMPOTENCY_TABLE.env_var,),
    optional_environment=(
        c.ENV_PG_TRANSIENT_FAILURE_RATE,
        c.ENV_PG_DECLINE_RATE,
        c.ENV_PG_LATENCY_MS,
        c.ENV_PG_SEED,
    ),
    access={
        # The per-payment gateway record: one conditional update per operation.
        c.IDEMPOTENCY_TABLE.env_var: ("dynamodb:UpdateItem",),
    },
    sizing=Sizing(timeout_seconds=10),
)
