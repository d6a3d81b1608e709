"""Every AWS action the API calls, per resource: the source of its task role's grants.

Keys are the environment variables that name the resources (the same contract the functions'
`ACCESS` declarations use); values are exact IAM actions, `<action>@<index>` for an index of the
table. infra/api_service.py grants exactly this (plus the KMS keys of these resources), and
tests/app/test_api_access.py records the calls the service makes and fails when one is missing
here or a declared action is never called. Dependency-free: infra imports it.
"""

from __future__ import annotations

from lambdas.shared import contract

ACCESS: dict[str, tuple[str, ...]] = {
    contract.FUNDINGS_TABLE.env_var: (
        "dynamodb:GetItem",  # read a campaign
        "dynamodb:PutItem",  # create (conditional)
        "dynamodb:UpdateItem",  # replace, soft delete, freeze the terms (conditional)
        "dynamodb:Scan",  # list all but DELETED
        f"dynamodb:Query@{contract.FUNDINGS_BY_STATE_INDEX}",  # list one state by endDate
    ),
    contract.PAYMENTS_TABLE.env_var: (
        "dynamodb:GetItem",  # a backer's read; an Idempotency-Key's earlier payment
        "dynamodb:PutItem",  # accept a payment PENDING (conditional)
    ),
    contract.IDEMPOTENCY_TABLE.env_var: (
        "dynamodb:GetItem",  # an idempotency record the conditional claim did not return
        "dynamodb:PutItem",  # claim an Idempotency-Key
        "dynamodb:UpdateItem",  # complete a claim; count a quota
        "dynamodb:DeleteItem",  # release the claim of a request that failed
    ),
    contract.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),  # payment.requested
}
