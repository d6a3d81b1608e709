"""The grant vocabulary: named actions on named resources, rendered into one policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from awsblocks.security import iam
from awsblocks.security.iam import (
    Grant,
    action_problems,
    cloudwatch_put_metrics,
    cognito_access,
    dynamodb_access,
    dynamodb_read,
    dynamodb_read_write,
    ecr_pull,
    granted_actions,
    kms_use,
    lambda_access,
    policy_document,
    ses_access,
    sns_access,
    sns_publish,
    sqs_access,
    sqs_consume,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SynthFn

TABLE = "arn:aws:dynamodb:ap-northeast-2:123456789012:table/orders"


def render(synth: SynthFn, grants: list[Grant]) -> dict[str, Any]:
    """Render through a real resource so outputs inside resources resolve as they would in AWS."""
    import pulumi_aws as aws
    from awsblocks.core import Component

    class Holder(Component):
        def __init__(self) -> None:
            super().__init__("Holder", "holder", None, None)
            aws.iam.Policy("p", policy=policy_document(grants), opts=self.child_opts())

    s = synth(program=Holder)
    return dict(json.loads(s.named("p").inputs["policy"]))


def test_policy_lists_each_grant_as_one_statement_with_output_resources_resolved(synth: SynthFn) -> None:
    index = pulumi.Output.from_input(TABLE).apply(lambda arn: f"{arn}/index/byCustomer")
    document = render(synth, [dynamodb_read_write(TABLE, [index], label="orders"), sns_publish("arn:t")])
    first, second = document["Statement"]
    assert first["Sid"] == "DynamoDBReadWriteOrders"
    assert first["Resource"] == [TABLE, f"{TABLE}/index/byCustomer"]
    assert "dynamodb:PutItem" in first["Action"] and "dynamodb:Query" in first["Action"]
    assert second == {
        "Sid": "SNSPublishTopic",
        "Effect": "Allow",
        "Action": ["sns:Publish"],
        "Resource": ["arn:t"],
    }


def test_read_grants_cannot_write() -> None:
    actions = set(dynamodb_read(TABLE).actions)
    assert not {a for a in actions if a.endswith(("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"))}


def test_unscoped_actions_must_say_so_and_may_carry_conditions(synth: SynthFn) -> None:
    auth, pull = ecr_pull(["arn:aws:ecr:ap-northeast-2:123456789012:repository/web"])
    assert auth.resources == ("*",) and auth.any_resource
    assert "*" not in pull.resources
    metrics = render(synth, [cloudwatch_put_metrics("Shop")])["Statement"][0]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Shop"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": ("dynamodb:*",)}, r"action 'dynamodb:\*'; allowed: a fully named action"),
        ({"actions": ("*",)}, r"action '\*'"),
        ({"actions": ()}, "no actions"),
        ({"resources": ()}, "no resources"),
        ({"resources": ("*",)}, r"resource '\*'; allowed: ARNs, or '\*' with any_resource=True"),
        ({"sid": "read-orders"}, r"sid='read-orders'; allowed: letters and digits only"),
    ],
)
def test_bad_grants_fail_with_a_clear_message(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"sid": "Ok", "actions": ("sqs:SendMessage",), "resources": ("arn:q",)}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Grant(**fields)


def test_policy_needs_grants_with_distinct_sids() -> None:
    with pytest.raises(ValueError, match="no grants"):
        policy_document([])
    with pytest.raises(ValueError, match=r"sids repeat: \['SQSConsumeQueue'\]"):
        policy_document([sqs_consume("arn:a"), sqs_consume("arn:b")])
    assert kms_use(["arn:k"]).actions == ("kms:Decrypt", "kms:GenerateDataKey")


def test_a_resource_named_twice_appears_once(synth: SynthFn) -> None:
    key = "arn:aws:kms:ap-northeast-2:123456789012:key/shared"
    shared = pulumi.Output.from_input(key)
    (statement,) = render(synth, [kms_use([key, shared, "arn:other"])])["Statement"]
    assert statement["Resource"] == [key, "arn:other"]


# --- exact actions ---------------------------------------------------------------------------


def test_dynamodb_access_grants_exactly_the_table_actions_and_each_index_only_its_own(synth: SynthFn) -> None:
    grants = dynamodb_access(
        TABLE,
        ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:GetItem"),
        indexes={"byCustomer": ("dynamodb:Query",), "byState": ("dynamodb:Query", "dynamodb:Scan")},
        label="orders",
    )
    table, by_customer, by_state = render(synth, grants)["Statement"]
    assert table == {
        "Sid": "DynamoDBOrders",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        "Resource": [TABLE],
    }
    assert (by_customer["Sid"], by_customer["Action"], by_customer["Resource"]) == (
        "DynamoDBOrdersIndexByCustomer",
        ["dynamodb:Query"],  # a Query declared on an index grants no Scan there
        [f"{TABLE}/index/byCustomer"],
    )
    assert (by_state["Action"], by_state["Resource"]) == (
        ["dynamodb:Query", "dynamodb:Scan"],
        [f"{TABLE}/index/byState"],
    )


def test_reading_only_through_an_index_grants_nothing_on_the_table(synth: SynthFn) -> None:
    (only,) = render(synth, dynamodb_access(TABLE, indexes={"byCustomer": ("dynamodb:Query",)}))["Statement"]
    assert only["Resource"] == [f"{TABLE}/index/byCustomer"]
    assert only["Action"] == ["dynamodb:Query"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: dynamodb_access(TABLE, ("dynamodb:TransactWriteItems",), label="orders"),
            r"dynamodb_access\(label='orders'\): actions: 'dynamodb:TransactWriteItems' is not an IAM "
            r"action: IAM authorizes it as dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem or "
            r"dynamodb:ConditionCheckItem",
        ),
        (
            lambda: dynamodb_access(TABLE, ("dynamodb:TransactGetItems",)),
            r"IAM authorizes it as dynamodb:GetItem",
        ),
        (
            lambda: dynamodb_access(TABLE, ("sqs:SendMessage",)),
            r"'sqs:SendMessage' is not a dynamodb action, and a DynamoDB table takes only dynamodb "
            r"actions; allowed: dynamodb:BatchGetItem, .*dynamodb:UpdateItem",
        ),
        (
            lambda: dynamodb_access(TABLE, ("dynamodb:*",)),
            r"'dynamodb:\*' is not an action on a DynamoDB table; allowed: dynamodb:BatchGetItem",
        ),
        (
            lambda: dynamodb_access(TABLE, ("dynamodb:DeleteTable",)),
            r"'dynamodb:DeleteTable' is not an action on a DynamoDB table",
        ),
        (
            lambda: dynamodb_access(TABLE, indexes={"byCustomer": ("dynamodb:GetItem",)}),
            r"indexes\['byCustomer'\]: 'dynamodb:GetItem' is not an action on a DynamoDB index; "
            r"allowed: dynamodb:Query, dynamodb:Scan",
        ),
        (
            lambda: dynamodb_access(TABLE, indexes={"by": ("dynamodb:Query",)}),
            r"indexes has index name 'by'; allowed: 3 to 255 letters, digits",
        ),
        (
            lambda: dynamodb_access(TABLE, indexes={"byCustomer": ()}),
            r"indexes\['byCustomer'\]: no actions on a DynamoDB index",
        ),
        (lambda: dynamodb_access(TABLE), r"actions and indexes are both empty"),
        (
            lambda: dynamodb_access(TABLE, "dynamodb:GetItem"),
            r"'dynamodb:GetItem' is one string, not a tuple of action names .*\('dynamodb:GetItem',\)",
        ),
        (
            lambda: sns_access("arn:t", ("sns:PublishBatch",), label="events"),
            r"sns_access\(label='events'\): actions: 'sns:PublishBatch' is not an IAM action: IAM "
            r"authorizes it as sns:Publish; allowed on an SNS topic: sns:Publish",
        ),
        (
            lambda: sns_access("arn:t", ("sns:Subscribe",)),
            r"'sns:Subscribe' is not an action on an SNS topic",
        ),
        (
            lambda: sqs_access("arn:q", ("sqs:SendMessageBatch",)),
            r"'sqs:SendMessageBatch' is not an IAM action: IAM authorizes it as sqs:SendMessage",
        ),
        (
            lambda: sqs_access("arn:q", ("sqs:PurgeQueue",)),
            r"'sqs:PurgeQueue' is not an action on an SQS queue",
        ),
        (lambda: sqs_access("arn:q", ()), r"no actions on an SQS queue"),
        (
            lambda: lambda_access("arn:f", ("lambda:Invoke",)),
            r"'lambda:Invoke' is not an IAM action: IAM authorizes it as lambda:InvokeFunction",
        ),
        (
            lambda: lambda_access("arn:f", ("lambda:UpdateFunctionCode",)),
            r"'lambda:UpdateFunctionCode' is not an action on a Lambda function; "
            r"allowed: lambda:InvokeFunction",
        ),
        (
            lambda: ses_access("arn:i", ("ses:SendBulkEmail",)),
            r"'ses:SendBulkEmail' is not an action on an SES identity; "
            r"allowed: ses:SendEmail, ses:SendRawEmail",
        ),
        (
            lambda: cognito_access("arn:p", ("cognito-idp:AdminDeleteUser",)),
            r"'cognito-idp:AdminDeleteUser' is not an action on a Cognito user pool; allowed: "
            r"cognito-idp:AdminGetUser, cognito-idp:ListUsers",
        ),
        (
            lambda: cognito_access("arn:p", ("ses:SendEmail",)),
            r"'ses:SendEmail' is not a cognito-idp action",
        ),
    ],
)
def test_exact_builders_refuse_what_is_not_a_real_action_on_that_resource(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    ("build", "sid", "actions"),
    [
        (lambda: sns_access("arn:r", ("sns:Publish",), label="events"), "SNSEvents", ("sns:Publish",)),
        (
            lambda: sqs_access("arn:r", ("sqs:SendMessage", "sqs:GetQueueAttributes"), label="work"),
            "SQSWork",
            ("sqs:SendMessage", "sqs:GetQueueAttributes"),
        ),
        (
            lambda: lambda_access("arn:r", ("lambda:InvokeFunction",), label="labels"),
            "LambdaLabels",
            ("lambda:InvokeFunction",),
        ),
        (lambda: ses_access("arn:r", ("ses:SendEmail",), label="sender"), "SESSender", ("ses:SendEmail",)),
        (
            lambda: cognito_access("arn:r", ("cognito-idp:AdminGetUser",), label="customers"),
            "CognitoCustomers",
            ("cognito-idp:AdminGetUser",),
        ),
    ],
)
def test_exact_builders_grant_exactly_the_declared_actions_on_the_one_resource(
    build: Callable[[], Grant], sid: str, actions: tuple[str, ...]
) -> None:
    grant = build()
    assert (grant.sid, grant.actions, grant.resources) == (sid, actions, ("arn:r",))


_EVERY_NAME = sorted(
    {a for actions in iam.RESOURCE_ACTIONS.values() for a in actions} | set(iam.AUTHORIZED_AS)
)


@given(
    kind=st.sampled_from(sorted(iam.RESOURCE_ACTIONS)),
    actions=st.lists(st.sampled_from(_EVERY_NAME), min_size=1, max_size=6),
)
def test_an_action_is_accepted_exactly_when_iam_authorizes_it_on_that_kind(
    kind: str, actions: list[str]
) -> None:
    problems = action_problems(kind, actions)
    refused = [a for a in actions if a not in iam.RESOURCE_ACTIONS[kind]]
    assert len(problems) == len(refused)
    assert all(repr(action) in problem for action, problem in zip(refused, problems, strict=True))


# --- reading a policy back -------------------------------------------------------------------


def test_granted_actions_reads_a_rendered_policy_back_as_action_to_resources(synth: SynthFn) -> None:
    document = render(
        synth,
        [
            *dynamodb_access(
                TABLE, ("dynamodb:GetItem", "dynamodb:Query"), indexes={"byCustomer": ("dynamodb:Query",)}
            ),
            sns_access("arn:t", ("sns:Publish",)),
            kms_use(["arn:k"]),
        ],
    )
    assert granted_actions(json.dumps(document)) == {
        "dynamodb:GetItem": [TABLE],
        "dynamodb:Query": [TABLE, f"{TABLE}/index/byCustomer"],
        "kms:Decrypt": ["arn:k"],
        "kms:GenerateDataKey": ["arn:k"],
        "sns:Publish": ["arn:t"],
    }


def test_granted_actions_takes_single_strings_and_skips_deny_statements() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:b"},
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": ["arn:a", "arn:b"]},
            {"Effect": "Deny", "Action": "sqs:PurgeQueue", "Resource": "*"},
        ],
    }
    assert granted_actions(json.dumps(policy)) == {"sqs:SendMessage": ["arn:a", "arn:b"]}
    single = {"Statement": {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:t"}}
    assert granted_actions(json.dumps(single)) == {"sns:Publish": ["arn:t"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", r"policy_json is not JSON"),
        ("[]", r"has no 'Statement'"),
        (
            json.dumps(
                {"Statement": [{"Sid": "All", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
            ),
            r"statement All allows NotAction, which names what is NOT granted",
        ),
        (
            json.dumps({"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": 3}]}),
            r"statement #0 Resource is 3; allowed: a string or a list of strings",
        ),
    ],
)
def test_granted_actions_refuses_what_it_cannot_list_faithfully(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        granted_actions(text)


@pytest.mark.parametrize(
    ("preset", "kind"),
    [
        (dynamodb_read_write(TABLE), iam.DYNAMODB_TABLE),
        (dynamodb_read(TABLE), iam.DYNAMODB_TABLE),
        (sns_publish("arn:t"), iam.SNS_TOPIC),
        (iam.sqs_send("arn:q"), iam.SQS_QUEUE),
        (sqs_consume("arn:q"), iam.SQS_QUEUE),
        (iam.lambda_invoke("arn:f"), iam.LAMBDA_FUNCTION),
    ],
)
def test_the_presets_name_only_actions_the_exact_vocabulary_accepts(preset: Grant, kind: str) -> None:
    assert action_problems(kind, preset.actions) == []
