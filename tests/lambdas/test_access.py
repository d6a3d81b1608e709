"""Least privilege: each function declares exactly the AWS actions it calls (its spec's `access`).

The infrastructure grants exactly that `access` (per resource, per index) and the local emulator
enforces it, so an undeclared call fails there with AccessDenied. Every lambda test records each
function's calls and fails on an undeclared one (conftest); these tests check the declarations'
shape, that the recording maps operations to IAM actions the way AWS authorizes them, and that a
run through every function's paths uses each declared action (nothing declared "just in case").
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas import campaign_closer, ledger_recorder, notifier, reconciler
from lambdas.shared import aws, contract
from lambdas.specs import catalog
from tests.lambdas.access import AccessRecorder, describe, uses_of
from tests.lambdas.conftest import LEDGER_DLQ, PROCESSING_DLQ, FakeContext, Platform, iso

RESOURCE_VARIABLES = {
    *(spec.env_var for spec in contract.TABLES),
    contract.ENV_PAYMENTS_TOPIC_ARN,
    contract.ENV_FUNDING_TARGET_TOPIC_ARN,
    contract.ENV_PAYMENT_PROCESSING_QUEUE_URL,
    contract.ENV_LEDGER_QUEUE_URL,
    contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL,
    contract.ENV_PG_GATEWAY_FUNCTION,
    contract.ENV_SES_SENDER,
    contract.ENV_COGNITO_USER_POOL_ID,
}
"""Environment variables that name an AWS resource (the rest are settings)."""
SERVICE_OF_VARIABLE = {
    **{spec.env_var: "dynamodb" for spec in contract.TABLES},
    contract.ENV_PAYMENTS_TOPIC_ARN: "sns",
    contract.ENV_FUNDING_TARGET_TOPIC_ARN: "sns",
    contract.ENV_PAYMENT_PROCESSING_QUEUE_URL: "sqs",
    contract.ENV_LEDGER_QUEUE_URL: "sqs",
    contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL: "sqs",
    contract.ENV_PG_GATEWAY_FUNCTION: "lambda",
    contract.ENV_SES_SENDER: "ses",
    contract.ENV_COGNITO_USER_POOL_ID: "cognito-idp",
}
INDEXES = {spec.env_var: {index.name for index in spec.indexes} for spec in contract.TABLES}

POWERTOOLS_FALLBACKS = {"dynamodb:GetItem", "dynamodb:DeleteItem"}
"""Powertools idempotency reads a record only when it vanished between its conditional put and
the read, and deletes one only when the wrapped call raised: declared (the library can make
them), not reached by a healthy run."""
LIFECYCLE_FUNCTIONS = tuple(f for f in catalog.function_names() if f != "books_auditor")
"""The payment chain's functions (the books auditor has its own tests)."""


@pytest.mark.parametrize("function", catalog.function_names())
def test_every_function_declares_its_access_per_resource(function: str) -> None:
    spec = catalog.spec_of(function)
    access = spec.access
    declared = set(spec.declared_environment)
    assert set(access) <= declared, (
        f"access names variables the function does not declare: {set(access) - declared}"
    )
    assert set(access) == declared & RESOURCE_VARIABLES, "every resource variable needs its actions"
    for variable, actions in access.items():
        assert actions and len(set(actions)) == len(actions), (variable, actions)
        for action in actions:
            service, _, rest = action.partition(":")
            name, _, index = rest.partition("@")
            assert service == SERVICE_OF_VARIABLE[variable] and name[:1].isupper(), (variable, action)
            assert "*" not in action
            if index:
                assert index in INDEXES[variable], f"{variable} has no index {index!r}"


def test_operations_map_to_the_actions_iam_authorizes() -> None:
    table = os.environ["PAYMENTS_TABLE"]
    transact = {
        "TransactItems": [
            {"Update": {"TableName": table}},
            {"Put": {"TableName": table}},
            {"ConditionCheck": {"TableName": table}},
            {"Delete": {"TableName": table}},
        ]
    }
    assert uses_of("transaction_check", "dynamodb", "TransactWriteItems", transact) == [
        ("PAYMENTS_TABLE", "dynamodb:UpdateItem"),
        ("PAYMENTS_TABLE", "dynamodb:PutItem"),
        ("PAYMENTS_TABLE", "dynamodb:ConditionCheckItem"),
        ("PAYMENTS_TABLE", "dynamodb:DeleteItem"),
    ]
    get = {"TransactItems": [{"Get": {"TableName": table}}]}
    assert uses_of("transaction_check", "dynamodb", "TransactGetItems", get) == [
        ("PAYMENTS_TABLE", "dynamodb:GetItem")
    ]
    query = {"TableName": table, "IndexName": contract.PAYMENTS_BY_FUNDING_INDEX}
    assert uses_of("transaction_check", "dynamodb", "Query", query) == [
        ("PAYMENTS_TABLE", f"dynamodb:Query@{contract.PAYMENTS_BY_FUNDING_INDEX}")
    ]
    topic = {"TopicArn": os.environ["PAYMENTS_TOPIC_ARN"]}
    assert uses_of("transaction_check", "sns", "PublishBatch", topic) == [
        ("PAYMENTS_TOPIC_ARN", "sns:Publish")
    ]
    # A resource the function does not declare cannot be mapped: that is a finding too.
    other = {"TopicArn": os.environ["FUNDING_TARGET_TOPIC_ARN"]}
    ((variable, _),) = uses_of("transaction_check", "sns", "Publish", other)
    assert variable.startswith("<no declared variable")


def test_an_undeclared_call_is_reported_naming_the_module_and_the_action(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrowed = dataclasses.replace(ledger_recorder.SPEC, access={"TRANSACTIONS_TABLE": ("dynamodb:GetItem",)})
    monkeypatch.setattr(ledger_recorder, "SPEC", narrowed)
    event = contract.make_event("payment.requested", payment_id="p", funding_id="f", amount=1)
    record = {"messageId": "m", "receiptHandle": "r", "body": json.dumps(event), "attributes": {}}

    ledger_recorder.handler({"Records": [record]}, FakeContext())

    undeclared = platform.access.undeclared()
    assert undeclared == {"ledger_recorder": [("TRANSACTIONS_TABLE", "dynamodb:PutItem")]}
    assert (
        "lambdas/specs/ledger_recorder.py: access['TRANSACTIONS_TABLE'] lacks 'dynamodb:PutItem'"
        in describe(undeclared)
    )
    platform.access.used.clear()  # the point is made; do not fail this test at teardown


def _lifecycle(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive every function through its main paths."""
    hour_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    # A campaign crossing its goal inside one batch; the payment after the crossing is cancelled.
    hot = platform.create_campaign(goal=30_000)
    for _ in range(4):
        platform.create_payment(hot, 10_000)
    platform.run()
    # A decline, told to the backer.
    monkeypatch.setenv("PG_DECLINE_RATE", "1")
    plain = platform.create_campaign(goal=10_000_000)
    platform.create_payment(plain, 2_000)
    platform.run()
    monkeypatch.delenv("PG_DECLINE_RATE")
    # A gateway outage: retries through the DLQ, give-up, then the void once it is back.
    platform.gateway.always_fail = True
    platform.create_payment(plain, 3_000)
    platform.run(max_rounds=30, strict=False)
    platform.gateway.always_fail = False
    platform.run()
    # A campaign that misses its goal: closed FAILED at its deadline, its payment refunded.
    failing = platform.create_campaign(goal=10_000_000)
    platform.create_payment(failing, 4_000)
    platform.run()
    aws.update_item("fundings", {"fundingId": failing}, "SET endDate = :e", {":e": hour_ago})
    campaign_closer.handler({}, FakeContext())
    platform.run()
    # The sweeper: a lost request, and a FAILED payment whose void is still owed.
    platform.create_payment(plain, 5_000, created_at=hour_ago, publish=False)
    platform.create_payment(
        plain,
        6_000,
        state="FAILED",
        publish=False,
        failedAt=hour_ago,
        failureReason="gateway unavailable after retries",
        owed="FAILED",
        owedSince=hour_ago,
    )
    # The ledger's DLQ: an event whose records exhausted their receives, and a message that is not one.
    stuck = contract.make_event("payment.requested", payment_id="p-stuck", funding_id=plain, amount=1_000)
    dlq = platform.queue_urls[LEDGER_DLQ]
    platform.sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps(stuck), MessageAttributes=contract.message_attributes(stuck)
    )
    platform.sqs.send_message(QueueUrl=dlq, MessageBody="not an event")
    monkeypatch.setattr(reconciler, "REDRIVE_WAIT_SECONDS", 0)
    summary = reconciler.handler({}, FakeContext())
    assert (summary["ledgerRedriven"], summary["ledgerPoison"]) == (1, 1)
    platform.run()
    # A backer known only to the user pool.
    idp = aws.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    idp.admin_create_user(
        UserPoolId=pool, Username="lee", UserAttributes=[{"Name": "email", "Value": "l@x.io"}]
    )
    sub = next(
        a["Value"]
        for a in idp.admin_get_user(UserPoolId=pool, Username="lee")["UserAttributes"]
        if a["Name"] == "sub"
    )
    monkeypatch.setenv("COGNITO_USER_POOL_ID", pool)
    payment = platform.create_payment(plain, 7_000, publish=False, email=None, userId=sub)
    event = contract.make_event(
        "payment.refunded", payment_id=payment["paymentId"], funding_id=plain, user_id=sub, amount=7_000
    )
    record = {"messageId": "n", "receiptHandle": "r", "body": json.dumps(event), "attributes": {}}
    assert notifier.handler({"Records": [record]}, FakeContext())["batchItemFailures"] == []


def test_a_run_through_every_path_uses_each_declared_action(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, no_retry_delay: list[int]
) -> None:
    _lifecycle(platform, monkeypatch)

    assert platform.depth(PROCESSING_DLQ) == 0
    unused: dict[str, list[tuple[str, str]]] = {}
    for function in LIFECYCLE_FUNCTIONS:
        access = catalog.spec_of(function).access
        used = platform.access.used.get(function, set())
        never = sorted(
            (variable, action)
            for variable, actions in access.items()
            for action in actions
            if (variable, action) not in used
            and not (variable == contract.IDEMPOTENCY_TABLE.env_var and action in POWERTOOLS_FALLBACKS)
        )
        if never:
            unused[function] = never
    assert unused == {}, f"declared but never used (grant nothing 'just in case'): {unused}"
    assert platform.access.undeclared() == {}


def test_the_recorder_attributes_calls_to_the_innermost_function() -> None:
    recorder = AccessRecorder()

    def as_module(name: str, body: str, **names: Any) -> Any:
        """A function whose frames look like module `lambdas.<name>`'s."""
        namespace: dict[str, Any] = {"__name__": f"lambdas.{name}", **names}
        exec(f"def run():\n    return {body}\n", namespace)
        return namespace["run"]

    gateway = as_module(
        "pg_gateway",
        "recorder.record('dynamodb', 'PutItem', {'TableName': 'idempotency'})",
        recorder=recorder,
    )
    processor = as_module("payment_processor", "inner()", inner=gateway)
    processor()

    assert dict(recorder.used) == {"pg_gateway": {("IDEMPOTENCY_TABLE", "dynamodb:PutItem")}}
