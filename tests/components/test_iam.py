"""The grant vocabulary: named actions on named resources, rendered into one policy."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.iam import (
    Grant,
    cloudwatch_put_metrics,
    dynamodb_read,
    dynamodb_read_write,
    ecr_pull,
    kms_use,
    policy_document,
    sns_publish,
    sqs_consume,
)
from tests.conftest import SynthFn

TABLE = "arn:aws:dynamodb:ap-northeast-2:123456789012:table/orders"


def render(synth: SynthFn, grants: list[Grant]) -> dict[str, Any]:
    """Render through a real resource so outputs inside resources resolve as they would in AWS."""
    import pulumi_aws as aws

    from components.base import Component

    class Holder(Component):
        def __init__(self) -> None:
            super().__init__("test", "Holder", "holder", None, None)
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
