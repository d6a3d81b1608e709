"""IAM as the emulator enforces it: which (action, resource) pairs a request needs, and the verdict."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from toolchain.embedded.access import (
    AccessLog,
    Decision,
    NoResources,
    Permission,
    evaluate,
    queue_arn_from_url,
    required_permissions,
    trusts_service,
)
from toolchain.embedded.awswire import WireRequest

REGION = "ap-northeast-2"
ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/payments"
LEDGER = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ledger"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:events"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1"


def request(service: str, operation: str, **params: Any) -> WireRequest:
    protocol = "query" if service in ("sns", "ses", "sts") else "json"
    return WireRequest(service=service, operation=operation, protocol=protocol, params=params, region=REGION)


def pairs(req: WireRequest, resolver: Any = None) -> list[tuple[str, str]]:
    return [(p.action, p.resource) for p in required_permissions(req, ACCOUNT, resolver)]


class Encrypted(NoResources):
    """Every queue and topic encrypted with KEY; senders on example.com send as the domain."""

    def queue_key(self, queue_arn: str) -> str | None:
        return KEY

    def topic_key(self, topic_arn: str) -> str | None:
        return KEY

    def ses_identity(self, address: str, region: str) -> str:
        return address.split("@")[1] if address.endswith("@example.com") else address


# --- what AWS authorizes per request -------------------------------------------------------------


def test_transact_write_items_is_authorized_per_item_as_aws_does() -> None:
    req = request(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[
            {"Put": {"TableName": "ledger", "Item": {}}},
            {"Update": {"TableName": "payments", "Key": {}}},
            {"Delete": {"TableName": "payments", "Key": {}}},
            {"ConditionCheck": {"TableName": "fundings", "Key": {}}},
        ],
    )
    assert pairs(req) == [
        ("dynamodb:PutItem", LEDGER),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:DeleteItem", TABLE),
        ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/fundings"),
    ]
    assert all(not a.endswith("TransactWriteItems") for a, _ in pairs(req))


def test_transact_get_items_is_get_item_per_item() -> None:
    req = request(
        "dynamodb", "TransactGetItems", TransactItems=[{"Get": {"TableName": "payments", "Key": {}}}]
    )
    assert pairs(req) == [("dynamodb:GetItem", TABLE)]


def test_batch_actions_are_checked_on_every_table_they_touch() -> None:
    req = request("dynamodb", "BatchWriteItem", RequestItems={"payments": [], "ledger": []})
    assert pairs(req) == [("dynamodb:BatchWriteItem", TABLE), ("dynamodb:BatchWriteItem", LEDGER)]
    req = request("dynamodb", "BatchGetItem", RequestItems={"payments": {}})
    assert pairs(req) == [("dynamodb:BatchGetItem", TABLE)]


def test_query_and_scan_of_an_index_target_the_index_arn() -> None:
    assert pairs(request("dynamodb", "Query", TableName="payments", IndexName="byFunding")) == [
        ("dynamodb:Query", f"{TABLE}/index/byFunding")
    ]
    assert pairs(request("dynamodb", "Scan", TableName="payments")) == [("dynamodb:Scan", TABLE)]
    assert pairs(request("dynamodb", "GetItem", TableName=TABLE)) == [("dynamodb:GetItem", TABLE)]
    assert pairs(request("dynamodb", "ListTables")) == [("dynamodb:ListTables", "*")]


def test_sqs_batch_actions_are_the_single_actions_on_the_queue_from_its_url() -> None:
    url = f"http://127.0.0.1:4566/{ACCOUNT}/orders"
    assert pairs(request("sqs", "SendMessageBatch", QueueUrl=url)) == [("sqs:SendMessage", QUEUE)]
    assert pairs(request("sqs", "DeleteMessageBatch", QueueUrl=url)) == [("sqs:DeleteMessage", QUEUE)]
    assert pairs(request("sqs", "ChangeMessageVisibilityBatch", QueueUrl=url)) == [
        ("sqs:ChangeMessageVisibility", QUEUE)
    ]
    assert queue_arn_from_url("https://sqs.eu-west-1.amazonaws.com/210987654321/q", REGION, ACCOUNT) == (
        f"arn:aws:sqs:{REGION}:210987654321:q"
    )


def test_encrypted_queues_and_topics_need_the_kms_actions_aws_documents() -> None:
    url = f"http://127.0.0.1:4566/{ACCOUNT}/orders"
    assert pairs(request("sqs", "SendMessage", QueueUrl=url), Encrypted()) == [
        ("sqs:SendMessage", QUEUE),
        ("kms:GenerateDataKey", KEY),
        ("kms:Decrypt", KEY),
    ]
    assert pairs(request("sqs", "ReceiveMessage", QueueUrl=url), Encrypted()) == [
        ("sqs:ReceiveMessage", QUEUE),
        ("kms:Decrypt", KEY),
    ]
    assert pairs(request("sqs", "DeleteMessage", QueueUrl=url), Encrypted()) == [("sqs:DeleteMessage", QUEUE)]
    kms = [
        p for p in required_permissions(request("sns", "PublishBatch", TopicArn=TOPIC), ACCOUNT, Encrypted())
    ]
    assert [(p.action, p.resource, p.kms) for p in kms] == [
        ("sns:Publish", TOPIC, False),
        ("kms:GenerateDataKey", KEY, True),
        ("kms:Decrypt", KEY, True),
    ]


def test_ses_sending_is_authorized_on_the_senders_identity() -> None:
    email = request("ses", "SendEmail", Source="Shop <shop@example.org>")
    assert pairs(email) == [("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/shop@example.org")]
    assert pairs(request("ses", "SendEmail", Source="shop@example.com"), Encrypted()) == [
        ("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com")
    ]
    source_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/other.org"
    assert pairs(request("ses", "SendRawEmail", Source="a@b.c", SourceArn=source_arn)) == [
        ("ses:SendRawEmail", source_arn)
    ]


def test_pools_functions_roles_and_namespaces() -> None:
    assert pairs(request("cognito-idp", "ListUsers", UserPoolId="pool_1")) == [
        ("cognito-idp:ListUsers", f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/pool_1")
    ]
    invoke = WireRequest(
        service="lambda",
        operation="Invoke",
        protocol="rest-json",
        params={"FunctionName": "gw"},
        region=REGION,
    )
    assert pairs(invoke) == [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gw")]
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    assert pairs(request("sts", "AssumeRole", RoleArn=role)) == [("sts:AssumeRole", role)]
    metrics = required_permissions(request("cloudwatch", "PutMetricData", Namespace="Shop"), ACCOUNT)
    assert metrics[0].context == {"cloudwatch:namespace": "Shop"}
    assert (
        required_permissions(WireRequest(service="dynamodb", operation="", protocol="unknown"), ACCOUNT) == []
    )
    assert required_permissions(request("sts", "GetCallerIdentity"), ACCOUNT) == []


# --- the verdict ----------------------------------------------------------------------------------


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def test_a_grant_on_the_table_allows_the_table_not_its_indexes() -> None:
    documents = [policy(allow(["dynamodb:Query", "dynamodb:GetItem"], [TABLE]))]
    assert evaluate(documents, Permission("dynamodb:GetItem", TABLE)) is Decision.ALLOWED
    assert (
        evaluate(documents, Permission("dynamodb:Query", f"{TABLE}/index/byFunding"))
        is Decision.IMPLICIT_DENY
    )
    assert evaluate(documents, Permission("dynamodb:PutItem", TABLE)) is Decision.IMPLICIT_DENY
    assert evaluate(documents, Permission("dynamodb:GetItem", LEDGER)) is Decision.IMPLICIT_DENY


def test_wildcards_case_and_explicit_deny() -> None:
    documents = [
        policy(allow(["DynamoDB:getitem"], [f"{TABLE}*"])),
        policy({"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": f"{TABLE}/index/*"}),
    ]
    assert evaluate(documents, Permission("dynamodb:GetItem", TABLE)) is Decision.ALLOWED
    assert evaluate(documents, Permission("dynamodb:GetItem", f"{TABLE}/index/x")) is Decision.EXPLICIT_DENY


def test_conditions_limit_an_allow_and_a_failed_condition_never_denies() -> None:
    documents = [
        policy(
            allow(
                ["cloudwatch:PutMetricData"],
                ["*"],
                Condition={"StringEquals": {"cloudwatch:namespace": "Shop"}},
            ),
            {
                "Effect": "Deny",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Forbidden"}},
            },
        )
    ]
    shop = Permission("cloudwatch:PutMetricData", "*", context={"cloudwatch:namespace": "Shop"})
    other = Permission("cloudwatch:PutMetricData", "*", context={"cloudwatch:namespace": "Other"})
    assert evaluate(documents, shop) is Decision.ALLOWED
    assert evaluate(documents, other) is Decision.IMPLICIT_DENY


def test_trust_policies_name_the_service_that_may_assume_the_role() -> None:
    lambda_trust = policy(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    ecs_trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": ["ecs-tasks.amazonaws.com"]},
            "Action": ["sts:AssumeRole"],
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    )
    assert trusts_service(lambda_trust, "lambda.amazonaws.com")
    assert not trusts_service(lambda_trust, "ecs-tasks.amazonaws.com")
    assert trusts_service(ecs_trust, "ecs-tasks.amazonaws.com")
    assert not trusts_service("not json", "lambda.amazonaws.com")
    wildcard = policy(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "STS:*"}
    )
    assert trusts_service(wildcard, "lambda.amazonaws.com")
    not_action = policy(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "NotAction": "sts:AssumeRole"}
    )
    assert not trusts_service(not_action, "lambda.amazonaws.com")


def test_the_access_log_files_use_and_denials_per_role() -> None:
    log = AccessLog()
    get = Permission("dynamodb:GetItem", TABLE)
    log.record("worker", [get, get], None)
    log.record("worker", [Permission("dynamodb:PutItem", TABLE)], Permission("dynamodb:PutItem", TABLE))
    assert log.denials() == {"worker": 1}
    assert log.to_json() == {
        "worker": {
            "used": {"dynamodb:GetItem": {TABLE: 2}},
            "denied": {"dynamodb:PutItem": {TABLE: 1}},
        }
    }


def test_motos_own_enforcement_denies_a_least_privilege_grant_which_is_why_the_gatekeeper_replaces_it() -> (
    None
):
    """moto checks DynamoDB against the resource "*": a grant on the table ARN never matches.

    If moto learns resource-level checks this test fails, and its own enforcement could be used."""
    from moto import mock_aws
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(6)
    def scenario() -> str:
        session = boto3.session.Session(
            aws_access_key_id="AKIATESTTESTTEST", aws_secret_access_key="x", region_name=REGION
        )
        iam = session.client("iam")
        ddb = session.client("dynamodb")
        ddb.create_table(
            TableName="payments",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        trust = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
                "Action": "sts:AssumeRole",
            }
        )
        role = iam.create_role(RoleName="worker", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="worker", PolicyName="p", PolicyDocument=policy(allow(["dynamodb:GetItem"], [TABLE]))
        )
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="a", PolicyDocument=policy(allow(["*"], ["*"])))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        admin = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=REGION,
        )
        creds = admin.client("sts").assume_role(RoleArn=role, RoleSessionName="worker-session")["Credentials"]
        worker = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGION,
        ).client("dynamodb")
        try:
            worker.get_item(TableName="payments", Key={"id": {"S": "1"}})
        except ClientError as exc:
            return f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']}"
        return "allowed"

    with mock_aws():
        outcome = scenario()
    # moto answers 403 with its XML error even on DynamoDB's JSON protocol.
    assert outcome.startswith("403") and "not authorized to perform: dynamodb:GetItem" in outcome, outcome
    # The gatekeeper's evaluation of the same grant allows it.
    assert evaluate(
        [policy(allow(["dynamodb:GetItem"], [TABLE]))], Permission("dynamodb:GetItem", TABLE)
    ) is (Decision.ALLOWED)


@pytest.mark.parametrize("operation", ["PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"])
def test_each_transact_item_kind_needs_its_own_grant(operation: str) -> None:
    kind = {v: k for k, v in {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.items()}.get(
        operation, "ConditionCheck"
    )
    req = request("dynamodb", "TransactWriteItems", TransactItems=[{kind: {"TableName": "payments"}}])
    needed = required_permissions(req, ACCOUNT)
    granted_other = [
        policy(
            allow(
                [a for a in ("dynamodb:PutItem", "dynamodb:UpdateItem") if a != f"dynamodb:{operation}"],
                [TABLE],
            )
        )
    ]
    granted_it = [policy(allow([f"dynamodb:{operation}"], [TABLE]))]
    assert all(evaluate(granted_it, p) is Decision.ALLOWED for p in needed)
    assert any(evaluate(granted_other, p) is not Decision.ALLOWED for p in needed)
