"""books_auditor: checks every campaign's books against its payments and ledger."""

from __future__ import annotations

from lambdas.shared import contract as c
from lambdas.specs.model import FunctionSpec, Schedule, Sizing

SPEC = FunctionSpec(
    name="books_auditor",
    # Every 15 minutes: the horizon is hours.
    trigger=Schedule("rate(15 minutes)"),
    environment=(
        c.FUNDINGS_TABLE.env_var,
        c.PAYMENTS_TABLE.env_var,
        c.TRANSACTIONS_TABLE.env_var,
        c.ENV_SETTLEMENT_HORIZON_SECONDS,
    ),
    # Read-only: the auditor must never be able to change what it audits.
    access={
        c.FUNDINGS_TABLE.env_var: ("dynamodb:GetItem", f"dynamodb:Query@{c.FUNDINGS_BY_STATE_INDEX}"),
        c.PAYMENTS_TABLE.env_var: (f"dynamodb:Query@{c.PAYMENTS_BY_FUNDING_INDEX}",),
        c.TRANSACTIONS_TABLE.env_var: ("dynamodb:Query",),
    },
    # Reads every campaign in scope with its payments and ledger (lambdas/books_auditor.py); the
    # memory is for a hot campaign's items held at once.
    sizing=Sizing(timeout_seconds=300, memory_mb=1024),
)
