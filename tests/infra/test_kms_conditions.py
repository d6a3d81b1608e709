"""Key policies: each service principal is admitted under the condition AWS documents for its path.

A condition key the service's request does not carry denies every request, silently (an alarm
that never arrives, an EventBridge DLQ write counted in InvocationsFailedToBeSentToDLQ). These
tests pin the condition per principal, on the component and on the committed stacks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsblocks.core import AccountFacts
from awsblocks.security.encryption_key import (
    CODESTAR_NOTIFICATIONS_DOC,
    EVENTBRIDGE_DLQ_DOC,
    SERVICE_KEY_USES,
    EncryptionKey,
    EncryptionKeyArgs,
    service_statements,
)
from awsblocks.testing import MOCK_ACCOUNT_ID, DeclaredResource, Synthesis

from tests.conftest import TEST_REGION, SynthFn

FACTS = AccountFacts(
    account_id=MOCK_ACCOUNT_ID, region=TEST_REGION, partition="aws", dns_suffix="amazonaws.com"
)
SOURCE_ACCOUNT = {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}
VIA_SQS_OWN_QUEUES = {
    "StringEquals": {"kms:ViaService": f"sqs.{TEST_REGION}.amazonaws.com"},
    "ArnLike": {"kms:EncryptionContext:aws:sqs:arn": f"arn:aws:sqs:{TEST_REGION}:{MOCK_ACCOUNT_ID}:*"},
}
VIA_SNS_OWN_TOPICS = {
    "StringEquals": {"kms:ViaService": f"sns.{TEST_REGION}.amazonaws.com"},
    "ArnLike": {"kms:EncryptionContext:aws:sns:topicArn": f"arn:aws:sns:{TEST_REGION}:{MOCK_ACCOUNT_ID}:*"},
}
VIA_SNS = {"StringEquals": {"kms:ViaService": f"sns.{TEST_REGION}.amazonaws.com"}}
ACCOUNT_SCOPED_KEYS = {
    "aws:SourceAccount",
    "kms:EncryptionContext:aws:sqs:arn",
    "kms:EncryptionContext:aws:sns:topicArn",
}
"""Condition keys that confine a service's use of the key to this account's resources."""


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in statements}


def principals_and_conditions(key: DeclaredResource) -> dict[str, list[dict[str, Any]]]:
    """Service principal → the conditions of every statement admitting it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in json.loads(key.inputs["policy"])["Statement"]:
        services = statement["Principal"].get("Service") if isinstance(statement["Principal"], dict) else None
        for service in [services] if isinstance(services, str) else services or []:
            found.setdefault(service, []).append(statement.get("Condition"))
    return found


# --- the table ------------------------------------------------------------------------------------


def test_eventbridge_is_never_conditioned_on_source_account_or_arn() -> None:
    found = by_sid(service_statements(FACTS, ["events"]))
    assert set(found) == {"EventBridgeWritesThisAccountsQueues", "EventBridgePublishesToThisAccountsTopics"}
    assert found["EventBridgeWritesThisAccountsQueues"]["Condition"] == VIA_SQS_OWN_QUEUES
    assert found["EventBridgePublishesToThisAccountsTopics"]["Condition"] == VIA_SNS_OWN_TOPICS
    for statement in found.values():
        assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
        assert "aws:Source" not in json.dumps(statement["Condition"])


def test_codestar_notifications_uses_the_documented_via_service_condition() -> None:
    (statement,) = service_statements(FACTS, ["codestar-notifications"])
    assert statement["Sid"] == "CodeStarNotificationsPublishesThroughSns"
    assert statement["Principal"] == {"Service": ["codestar-notifications.amazonaws.com"]}
    assert statement["Condition"] == VIA_SNS
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_sns_and_cloudwatch_keep_source_account_in_one_statement() -> None:
    (statement,) = service_statements(FACTS, ["cloudwatch", "sns", "sns"])
    assert statement["Sid"] == "ServicesUseForThisAccount"
    assert statement["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]}
    assert statement["Condition"] == SOURCE_ACCOUNT


def test_every_known_service_cites_aws_documentation_and_is_confined() -> None:
    assert SERVICE_KEY_USES["events"][0].documentation == EVENTBRIDGE_DLQ_DOC
    assert SERVICE_KEY_USES["codestar-notifications"][0].documentation == CODESTAR_NOTIFICATIONS_DOC
    for service, uses in SERVICE_KEY_USES.items():
        for use in uses:
            assert use.documentation.startswith("https://docs.aws.amazon.com/"), service
            condition = use.condition(FACTS)
            keys = {key for operator in condition.values() for key in operator}
            assert keys, service  # never unconditioned
            if service == "codestar-notifications":
                assert keys == {"kms:ViaService"}  # exactly the documented statement
            else:
                assert keys & ACCOUNT_SCOPED_KEYS, service


def test_an_unknown_service_principal_is_refused_before_anything_is_declared(synth: SynthFn) -> None:
    with pytest.raises(ValueError, match=r"service_principals has \['s3'\]; allowed: .*SERVICE_KEY_USES"):
        synth(
            program=lambda: EncryptionKey(
                "shop", EncryptionKeyArgs(description="shop", service_principals=["s3"])
            )
        )
    with pytest.raises(ValueError, match="no documented key-policy statement"):
        service_statements(FACTS, ["s3"])


def test_the_component_writes_the_per_path_statements_into_its_key_policy(synth: SynthFn) -> None:
    s = synth(
        program=lambda: EncryptionKey(
            "shop",
            EncryptionKeyArgs(
                description="orders", service_principals=["events", "codestar-notifications", "cloudwatch"]
            ),
        )
    )
    (key,) = s.of_type("aws:kms/key:Key")
    found = principals_and_conditions(key)
    assert found["events.amazonaws.com"] == [VIA_SQS_OWN_QUEUES, VIA_SNS_OWN_TOPICS]
    assert found["codestar-notifications.amazonaws.com"] == [VIA_SNS]
    assert found["cloudwatch.amazonaws.com"] == [SOURCE_ACCOUNT]


# --- the stacks ----------------------------------------------------------------------------------


def keys_of(s: Synthesis) -> list[DeclaredResource]:
    return s.of_type("aws:kms/key:Key")


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_no_key_of_a_stack_conditions_eventbridge_or_codestar_on_source_account(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    seen: set[str] = set()
    for key in keys_of(s):
        for principal, conditions in principals_and_conditions(key).items():
            seen.add(principal)
            for condition in conditions:
                if principal in ("events.amazonaws.com", "codestar-notifications.amazonaws.com"):
                    assert "aws:SourceAccount" not in json.dumps(condition), (key.name, principal)
                    assert "aws:SourceArn" not in json.dumps(condition), (key.name, principal)
                if principal == "events.amazonaws.com":
                    assert condition in (VIA_SQS_OWN_QUEUES, VIA_SNS_OWN_TOPICS), key.name
                if principal == "codestar-notifications.amazonaws.com":
                    assert condition == VIA_SNS, key.name
    assert "events.amazonaws.com" in seen  # the scheduled functions' dead-letter queues


def test_a_stack_with_a_pipeline_lets_codestar_notifications_use_the_alerts_key_through_sns(
    synth: SynthFn,
) -> None:
    s = synth(
        "dev",
        overrides={
            "crowdfunding:pipelineEnabled": True,
            "crowdfunding:pipelineConnectionArn": (
                f"arn:aws:codeconnections:{TEST_REGION}:{MOCK_ACCOUNT_ID}:connection/"
                "0b7e3c52-5a1d-4f0e-9c6b-2d8e4f1a7b93"
            ),
            "crowdfunding:pipelineRepository": "shop-org/shop",
        },
    )
    topic = s.named("ops-alerts-topic")
    (key,) = [k for k in keys_of(s) if k.state["arn"] == topic.inputs["kmsMasterKeyId"]]
    assert principals_and_conditions(key)["codestar-notifications.amazonaws.com"] == [VIA_SNS]
