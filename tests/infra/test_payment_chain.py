"""The payment chain's wiring on the committed stacks: topics → queues → functions, grants, environment."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from infra import payment_chain
from infra.config import ConfigError, parse
from infra.payment_chain import FUNCTION_SETTINGS, RUNTIME_ENVIRONMENT, declared_environment
from infra.synth import DeclaredResource, OfflineMocks, Synthesis, read_stack_config
from lambdas import packaging
from lambdas.shared import contract
from tests.conftest import SynthFn

STACKS = ("dev", "prod")


def out(resource: DeclaredResource) -> dict[str, Any]:
    """The outputs the mocks give a resource (arn, url, name …)."""
    return OfflineMocks("ap-northeast-2").new_resource(
        MockResourceArgs(resource.type, resource.name, resource.inputs, custom=True)
    )[1]


def by_arn(s: Synthesis) -> dict[str, str]:
    """Every cloud resource's ARN → its logical name."""
    return {out(r)["arn"]: r.name for r in s.cloud_resources if "arn" not in r.inputs}  # not TopicPolicy


def function(s: Synthesis, name: str) -> DeclaredResource:
    return s.named(f"{name.replace('_', '-')}-function", "aws:lambda/function:Function")


def role_statements(s: Synthesis, name: str) -> list[dict[str, Any]]:
    policy = s.named(f"{name.replace('_', '-')}-permissions", "aws:iam/rolePolicy:RolePolicy")
    return list(json.loads(policy.inputs["policy"])["Statement"])


def group(actions: list[str]) -> str:
    """What a statement is for, read from its actions."""
    if all(a.startswith("dynamodb:") for a in actions):
        return "table" if "dynamodb:PutItem" in actions else "table-read"
    known = {
        ("sns:Publish",): "publish",
        ("sqs:GetQueueAttributes", "sqs:SendMessage"): "send",
        ("lambda:InvokeFunction",): "invoke",
        ("ses:SendEmail", "ses:SendRawEmail"): "email",
        ("logs:CreateLogStream", "logs:PutLogEvents"): "logs",
        ("kms:Decrypt", "kms:GenerateDataKey"): "kms",
        ("kms:Decrypt",): "kms-decrypt",
        ("cognito-idp:ListUsers",): "users",
        (
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
        ): "consume",
    }
    return known[tuple(sorted(actions))]


def grants(s: Synthesis, name: str) -> set[tuple[str, str]]:
    """(what, on which resource) for every non-KMS statement of a function's role."""
    arns = by_arn(s)
    found: set[tuple[str, str]] = set()
    for statement in role_statements(s, name):
        assert statement["Effect"] == "Allow"
        kind = group(statement["Action"])
        if kind.startswith("kms"):
            continue
        resources = statement["Resource"]
        main = resources[0]
        if kind == "logs":
            assert resources == [main, f"{main}:*"]
        elif kind == "table":
            table = s.named(arns[main], "aws:dynamodb/table:Table")
            index_names = [i["name"] for i in table.inputs.get("globalSecondaryIndexes", [])]
            assert resources[1:] == [f"{main}/index/{n}" for n in index_names], (
                "the table and its indexes only"
            )
        else:
            assert len(resources) == 1
        found.add((kind, arns[main]))
    return found


EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "pg_gateway": {("table", "idempotency-table")},
    "payment_processor": {
        ("table", "payments-table"),
        ("publish", "payments-topic"),
        ("invoke", "pg-gateway-function"),
        ("consume", "payment-processing-queue"),
    },
    "payment_retry": {
        ("table", "payments-table"),
        ("table", "idempotency-table"),
        ("publish", "payments-topic"),
        ("send", "payment-processing-queue"),
        ("invoke", "pg-gateway-function"),
        ("consume", "payment-processing-dlq"),
    },
    "funding_update": {
        ("table", "fundings-table"),
        ("table", "payments-table"),
        ("publish", "payments-topic"),
        ("publish", "funding-target-topic"),
        ("consume", "funding-update-queue"),
    },
    "transaction_check": {
        ("table", "payments-table"),
        ("publish", "payments-topic"),
        ("invoke", "pg-gateway-function"),
        ("consume", "transaction-check-queue"),
    },
    "ledger_recorder": {("table", "transactions-table"), ("consume", "ledger-queue")},
    "notifier": {
        ("table", "fundings-table"),
        ("table", "payments-table"),
        ("table", "idempotency-table"),
        ("email", "notifications-sender-identity"),
        ("consume", "notifications-queue"),
        ("users", "USER_POOL"),
    },
    "campaign_closer": {
        ("table", "fundings-table"),
        ("table", "payments-table"),
        ("publish", "payments-topic"),
        ("publish", "funding-target-topic"),
        ("invoke", "pg-gateway-function"),
        ("send", "campaign-closer-dlq-queue"),
    },
    "reconciler": {
        ("table", "payments-table"),
        ("publish", "payments-topic"),
        ("send", "reconciler-dlq-queue"),
    },
}


def test_every_packaged_function_is_declared_once(synth: SynthFn) -> None:
    s = synth("dev")
    declared = {f.name for f in s.of_type("aws:lambda/function:Function")}
    assert declared == {f"{name.replace('_', '-')}-function" for name in packaging.FUNCTIONS}
    assert set(EXPECTED_GRANTS) == set(packaging.FUNCTIONS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_each_role_holds_exactly_what_its_function_needs(synth: SynthFn, stack: str, name: str) -> None:
    s = synth(stack)
    logs = f"{name.replace('_', '-')}-logs"
    (pool,) = s.of_type("aws:cognito/userPool:UserPool")
    expected = {
        (kind, pool.name if target == "USER_POOL" else target) for kind, target in EXPECTED_GRANTS[name]
    }
    assert grants(s, name) == expected | {("logs", logs)}


@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_dev_uses_the_platform_key_for_everything(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    assert [k.name for k in s.of_type("aws:kms/key:Key")] == ["platform-key"]
    arns = by_arn(s)
    keys = {
        arns[k]
        for st in role_statements(s, name)
        if group(st["Action"]).startswith("kms")
        for k in st["Resource"]
    }
    assert keys == {"platform-key"}


def _key_of(resource: DeclaredResource) -> str:
    inputs = resource.inputs
    if resource.type == "aws:dynamodb/table:Table":
        return str(inputs["serverSideEncryption"]["kmsKeyArn"])
    return str(inputs["kmsMasterKeyId"])


@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_prod_grants_the_own_keys_of_exactly_the_resources_a_function_uses(synth: SynthFn, name: str) -> None:
    s = synth("prod")
    arns = by_arn(s)
    statements = role_statements(s, name)
    granted = {k for st in statements if group(st["Action"]) == "kms" for k in st["Resource"]}
    decrypt_only = {k for st in statements if group(st["Action"]) == "kms-decrypt" for k in st["Resource"]}
    used = {
        _key_of(s.named(resource))
        for kind, resource in EXPECTED_GRANTS[name]
        if kind in ("table", "publish", "send")
    }
    consumed = [resource for kind, resource in EXPECTED_GRANTS[name] if kind == "consume"]
    assert granted == used
    assert decrypt_only == {_key_of(s.named(q)) for q in consumed}
    assert all(arns[k].endswith("-key-key") for k in granted | decrypt_only), "dedicated keys in prod"


EXPECTED_FEEDS: set[tuple[str, str, tuple[str, ...] | None]] = {
    ("payments", "payment-processing", ("payment.requested",)),
    ("payments", "funding-update", ("payment.approved",)),
    ("funding-target", "transaction-check", ("payment.cancel_requested", "funding.goal_reached")),
    ("payments", "ledger", None),
    ("funding-target", "ledger", None),
    ("funding-target", "notifications", ("funding.goal_reached", "funding.failed")),
    (
        "payments",
        "notifications",
        ("payment.declined", "payment.failed", "payment.cancelled", "payment.refunded"),
    ),
}


@pytest.mark.parametrize("stack", STACKS)
def test_topics_feed_exactly_the_queues_of_design_section_1_with_their_filters(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    arns = by_arn(s)
    feeds = set()
    for subscription in s.of_type("aws:sns/topicSubscription:TopicSubscription"):
        inputs = subscription.inputs
        assert inputs["protocol"] == "sqs" and inputs["rawMessageDelivery"] is True
        topic = arns[inputs["topic"]].removesuffix("-topic")
        queue = arns[inputs["endpoint"]].removesuffix("-queue")
        rule = json.loads(inputs["filterPolicy"]) if "filterPolicy" in inputs else None
        if rule is not None:
            assert set(rule) == {"type"} and inputs["filterPolicyScope"] == "MessageAttributes"
        feeds.add((topic, queue, tuple(rule["type"]) if rule else None))
    assert feeds == EXPECTED_FEEDS


def test_each_queue_lets_exactly_its_topics_send(synth: SynthFn) -> None:
    s = synth("dev")
    arns = by_arn(s)
    for queue_name in {queue for _, queue, _ in EXPECTED_FEEDS}:
        queue = s.named(f"{queue_name}-queue")
        (policy,) = [
            p
            for p in s.of_type("aws:sqs/queuePolicy:QueuePolicy")
            if p.inputs["queueUrl"] == out(queue)["url"]
        ]
        senders = {
            arns[st["Condition"]["ArnEquals"]["aws:SourceArn"]]
            for st in json.loads(policy.inputs["policy"])["Statement"]
            if st.get("Principal") == {"Service": "sns.amazonaws.com"}
        }
        assert senders == {f"{t}-topic" for t, q, _ in EXPECTED_FEEDS if q == queue_name}


EXPECTED_SOURCES = {
    "payment_processor": "payment-processing-queue",
    "funding_update": "funding-update-queue",
    "transaction_check": "transaction-check-queue",
    "ledger_recorder": "ledger-queue",
    "notifier": "notifications-queue",
    "payment_retry": "payment-processing-dlq",
}


@pytest.mark.parametrize("stack", STACKS)
def test_each_consumer_reads_its_queue_with_partial_batch_failures(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    arns = by_arn(s)
    mappings = {
        arns[m.inputs["functionName"]]: m.inputs
        for m in s.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    }
    assert {f: arns[m["eventSourceArn"]] for f, m in mappings.items()} == {
        f"{name.replace('_', '-')}-function": queue for name, queue in EXPECTED_SOURCES.items()
    }
    for name, queue_name in EXPECTED_SOURCES.items():
        mapping = mappings[f"{name.replace('_', '-')}-function"]
        settings = FUNCTION_SETTINGS[name]
        assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["batchSize"] == settings.batch_size
        assert mapping["maximumBatchingWindowInSeconds"] == settings.batching_window_seconds
        queue = s.named(queue_name, "aws:sqs/queue:Queue")
        assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * function(s, name).inputs["timeout"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_dead_letter_queue_alarms_to_ops_alerts(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    alerts = out(s.named("ops-alerts-topic"))["arn"]
    arns = by_arn(s)
    names = {out(q)["name"]: q.name for q in s.of_type("aws:sqs/queue:Queue")}
    watched = set()
    for alarm in s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == [alerts], alarm.name
        if alarm.inputs.get("metricName") == "ApproximateNumberOfMessagesVisible":  # the DLQ alarms
            watched.add(names[alarm.inputs["dimensions"]["QueueName"]])
    dead_letter_queues = {
        q.name for q in s.of_type("aws:sqs/queue:Queue") if q.name.endswith("dlq") or "-dlq-" in q.name
    }
    assert watched == dead_letter_queues and len(watched) == 7
    assert {arns[alerts]} == {"ops-alerts-topic"}


@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_each_function_gets_exactly_the_environment_its_module_declares(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    required, optional = declared_environment(name)
    variables = function(s, name).inputs["environment"]["variables"]
    assert set(variables) == set(required) | set(optional) | set(RUNTIME_ENVIRONMENT)
    assert variables["POWERTOOLS_SERVICE_NAME"] == name
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == contract.METRICS_NAMESPACE


def test_environment_values_point_at_the_right_resources_and_config(synth: SynthFn) -> None:
    s = synth("dev")
    config = read_stack_config("dev")
    processor = function(s, "payment_processor").inputs["environment"]["variables"]
    assert processor["PAYMENTS_TABLE"] == out(s.named("payments-table"))["name"]
    assert processor["PAYMENTS_TOPIC_ARN"] == out(s.named("payments-topic"))["arn"]
    assert processor["PG_GATEWAY_FUNCTION_NAME"] == out(s.named("pg-gateway-function"))["name"]
    retry = function(s, "payment_retry").inputs["environment"]["variables"]
    assert retry["PAYMENT_PROCESSING_QUEUE_URL"] == out(s.named("payment-processing-queue"))["url"]
    assert (
        retry["RETRY_MAX_ATTEMPTS"],
        retry["RETRY_BASE_DELAY_SECONDS"],
        retry["RETRY_MAX_DELAY_SECONDS"],
    ) == (
        "5",
        "30",
        "900",
    )
    gateway = function(s, "pg_gateway").inputs["environment"]["variables"]
    assert gateway["PG_DECLINE_RATE"] == config["crowdfunding:pgDeclineRate"] == "0.1"
    assert gateway["PG_TRANSIENT_FAILURE_RATE"] == "0.05" and gateway["PG_LATENCY_MS"] == "200"
    assert gateway["IDEMPOTENCY_TABLE"] == out(s.named("idempotency-table"))["name"]
    notifier = function(s, "notifier").inputs["environment"]["variables"]
    assert notifier["SES_SENDER"] == config["crowdfunding:sesSender"]
    (pool,) = s.of_type("aws:cognito/userPool:UserPool")
    assert notifier["COGNITO_USER_POOL_ID"] == pool.id
    assert (
        s.named("notifications-sender-identity").inputs["emailIdentity"] == config["crowdfunding:sesSender"]
    )


def test_a_user_pool_adds_its_id_and_only_a_list_users_grant(synth: SynthFn) -> None:
    cfg = parse("dev", read_stack_config("dev"))
    pool_arn = "arn:aws:cognito-idp:ap-northeast-2:123456789012:userpool/ap-northeast-2_Pool"

    def program() -> None:
        payment_chain.declare_payment_chain(
            cfg,
            platform_key_arn="arn:aws:kms:ap-northeast-2:123456789012:key/platform",
            opts=pulumi.ResourceOptions(),
            user_pool=payment_chain.UserPoolRef(id="ap-northeast-2_Pool", arn=pool_arn),
        )

    s = synth(program=program)
    assert (
        function(s, "notifier").inputs["environment"]["variables"]["COGNITO_USER_POOL_ID"]
        == "ap-northeast-2_Pool"
    )
    (cognito,) = [st for st in role_statements(s, "notifier") if st["Sid"] == "CognitoListUsers"]
    assert (cognito["Action"], cognito["Resource"]) == (["cognito-idp:ListUsers"], [pool_arn])


@pytest.mark.parametrize("stack", STACKS)
def test_functions_run_the_packaged_code_on_arm64_with_the_matching_powertools_layer(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    layer = packaging.powertools_layer_arn("ap-northeast-2", "arm64")
    for name in packaging.FUNCTIONS:
        inputs = function(s, name).inputs
        assert inputs["runtime"] == packaging.RUNTIME and inputs["architectures"] == ["arm64"]
        assert inputs["handler"] == packaging.handler_of(name)
        assert inputs["layers"] == [layer]
        assert inputs["code"]["fileArchive"].endswith(f"build/lambda/{name}.zip")
        assert inputs["timeout"] == FUNCTION_SETTINGS[name].timeout_seconds
        assert inputs["memorySize"] == FUNCTION_SETTINGS[name].memory_mb


@pytest.mark.parametrize("name", ["campaign_closer", "reconciler"])
def test_schedules_invoke_the_closer_and_the_reconciler(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    component = name.replace("_", "-")
    rule, target = s.named(f"{component}-schedule"), s.named(f"{component}-target")
    assert rule.inputs["scheduleExpression"] == FUNCTION_SETTINGS[name].schedule == "rate(5 minutes)"
    assert target.inputs["arn"] == out(function(s, name))["arn"]
    assert target.inputs["deadLetterConfig"]["arn"] == out(s.named(f"{component}-dlq-queue"))["arn"]
    assert target.inputs["retryPolicy"]["maximumRetryAttempts"] == 2


@pytest.mark.parametrize("stack", STACKS)
def test_tables_follow_the_contract_and_prod_protects_them(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    for spec in contract.TABLES:
        inputs = s.named(f"{spec.logical_name}-table").inputs
        assert inputs["hashKey"] == spec.partition_key and inputs.get("rangeKey") == spec.sort_key
        indexes = {
            i["name"]: [k["attributeName"] for k in i["keySchemas"]]
            for i in inputs.get("globalSecondaryIndexes", [])
        }
        assert indexes == {i.name: [a for a in (i.partition_key, i.sort_key) if a] for i in spec.indexes}
        assert inputs.get("ttl") == (
            {"attributeName": spec.ttl_attribute, "enabled": True} if spec.ttl_attribute else None
        )
        assert inputs["pointInTimeRecovery"] == {"enabled": True}
        assert inputs["deletionProtectionEnabled"] is (stack == "prod")
    assert s.named("idempotency-table").inputs["ttl"] == {"attributeName": "expiration", "enabled": True}
    assert [i["name"] for i in s.named("payments-table").inputs["globalSecondaryIndexes"]] == [
        "byFunding",
        "byStateCreatedAt",
    ]


def test_ops_alerts_gets_an_email_subscription_only_when_alert_email_is_set(synth: SynthFn) -> None:
    without = synth("dev")
    assert not [
        r
        for r in without.of_type("aws:sns/topicSubscription:TopicSubscription")
        if r.inputs["protocol"] == "email"
    ]
    with_email = synth("dev", overrides={"crowdfunding:alertEmail": "oncall@example.com"})
    (email,) = [
        r
        for r in with_email.of_type("aws:sns/topicSubscription:TopicSubscription")
        if r.inputs["protocol"] == "email"
    ]
    assert email.inputs["endpoint"] == "oncall@example.com"
    assert email.inputs["topic"] == out(with_email.named("ops-alerts-topic"))["arn"]


def test_the_stack_exports_what_later_layers_need(synth: SynthFn) -> None:
    s = synth("dev")
    outputs = s.stack_outputs
    assert outputs["paymentsTableName"] == out(s.named("payments-table"))["name"]
    assert outputs["idempotencyTableName"] == out(s.named("idempotency-table"))["name"]
    assert outputs["paymentsTopicArn"] == out(s.named("payments-topic"))["arn"]
    assert outputs["opsAlertsTopicArn"] == out(s.named("ops-alerts-topic"))["arn"]
    assert outputs["paymentProcessingQueueUrl"] == out(s.named("payment-processing-queue"))["url"]
    assert outputs["paymentProcessingDeadLetterQueueUrl"] == out(s.named("payment-processing-dlq"))["url"]
    assert set(outputs["functionNames"]) == set(packaging.FUNCTIONS)


def test_a_dev_stack_without_a_sender_is_refused_before_anything_is_declared(synth: SynthFn) -> None:
    with pytest.raises(ConfigError, match=r"crowdfunding:sesSender: required on a dev stack"):
        synth("dev", config={**read_stack_config("dev"), "crowdfunding:sesSender": ""})


def test_an_environment_variable_the_table_does_not_map_stops_the_program(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(payment_chain.ENVIRONMENT_SOURCES, contract.ENV_PG_SEED)
    with pytest.raises(ValueError, match=r"function pg_gateway declares environment variable PG_SEED, which"):
        synth("dev", config=read_stack_config("dev"))
