"""The payment chain's wiring on the committed stacks: topics → queues → functions, grants, environment."""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from awsblocks.testing import DeclaredResource, OfflineMocks, Synthesis
from awsblocks.testing.mocks import OFFLINE_LAYER_VERSION
from pulumi.runtime.mocks import MockResourceArgs

from infra import payment_chain
from infra.config import parse
from infra.payment_chain import RUNTIME_ENVIRONMENT
from lambdas import packaging
from lambdas.shared import contract
from lambdas.specs import catalog
from lambdas.specs.model import FunctionSpec, InvokedOnly, Schedule, Sizing
from tests.conftest import SynthFn
from toolchain.project import read_stack_config

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
    policy = s.named(f"{component(name)}-permissions", "aws:iam/rolePolicy:RolePolicy")
    return list(json.loads(policy.inputs["policy"])["Statement"])


def component(name: str) -> str:
    """The component (and logical-name prefix) of a function: payment_processor → payment-processor."""
    return name.replace("_", "-")


def resource_name(s: Synthesis, source: payment_chain.Source) -> str:
    """The logical name of the resource an environment variable's source names."""
    if isinstance(source, payment_chain.FromTable):
        return f"{source.logical_name}-table"
    if isinstance(source, payment_chain.FromTopic):
        return f"{source.topic}-topic"
    if isinstance(source, payment_chain.FromQueue):
        return f"{source.queue}-queue"
    if isinstance(source, payment_chain.FromDeadLetterQueue):
        return f"{source.queue}-dlq"
    if isinstance(source, payment_chain.FromFunction):
        return f"{component(source.function)}-function"
    if isinstance(source, payment_chain.FromSender):
        return "notifications-sender-identity"
    assert isinstance(source, payment_chain.FromUserPool), source
    (pool,) = s.of_type("aws:cognito/userPool:UserPool")
    return pool.name


def named(arns: dict[str, str], arn: str) -> str:
    """An ARN as `<logical name>`, `<table>/index/<index>` or `<log group>:*`."""
    if arn in arns:
        return arns[arn]
    if arn == "*":  # only actions without resource-level permissions (X-Ray uploads)
        return arn
    table, marker, index = arn.partition("/index/")
    if marker and table in arns:
        return f"{arns[table]}/index/{index}"
    assert arn.endswith(":*") and arn.removesuffix(":*") in arns, arn
    return f"{arns[arn.removesuffix(':*')]}:*"


def granted(s: Synthesis, name: str, *, kms: bool = False) -> set[tuple[str, str]]:
    """(action, resource) for every Allow of a function's role; KMS statements only when `kms`."""
    arns = by_arn(s)
    found: set[tuple[str, str]] = set()
    for statement in role_statements(s, name):
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        for action in statement["Action"]:
            if action.startswith("kms:") is kms:
                found.update((action, named(arns, resource)) for resource in statement["Resource"])
    return found


def declared(s: Synthesis, name: str) -> set[tuple[str, str]]:
    """(action, resource) exactly as the function's spec's access declares them, on the resources this
    stack declares (an optional one it leaves out, such as the sender, grants nothing)."""
    pairs: set[tuple[str, str]] = set()
    declared_names = {r.name for r in s.resources}
    spec = catalog.spec_of(name)
    for var, actions in spec.access.items():
        target = resource_name(s, payment_chain.ENVIRONMENT_SOURCES[var])
        if target not in declared_names:
            assert var in spec.optional_environment, f"{name} requires {var}, yet {target} is absent"
            continue
        for entry in actions:
            action, at, index = entry.partition("@")
            pairs.add((action, f"{target}/index/{index}" if at else target))
    return pairs


CONSUME = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
"""What an SQS event source mapping needs of the function's role (QueueFunction adds it)."""


def own_needs(name: str) -> set[tuple[str, str]]:
    """What the function component adds on its own: its logs, its queue, its dead-letter queue."""
    logs = f"{component(name)}-logs"
    needs = {(a, r) for a in ("logs:CreateLogStream", "logs:PutLogEvents") for r in (logs, f"{logs}:*")}
    # Active tracing: trace uploads have no resource-level permissions (policies.rules.UNSCOPABLE_ACTIONS).
    needs |= {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    if name in EXPECTED_SOURCES:
        needs |= {(action, EXPECTED_SOURCES[name]) for action in CONSUME}
    if isinstance(catalog.spec_of(name).trigger, Schedule):  # failed async invocations go to its DLQ
        needs |= {(a, f"{component(name)}-dlq-queue") for a in ("sqs:GetQueueAttributes", "sqs:SendMessage")}
    return needs


def test_every_packaged_function_is_declared_once(synth: SynthFn) -> None:
    s = synth("dev")
    declared_functions = {f.name for f in s.of_type("aws:lambda/function:Function")}
    assert declared_functions == {f"{component(name)}-function" for name in catalog.function_names()}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", catalog.function_names())
def test_each_role_holds_exactly_its_access_declaration(synth: SynthFn, stack: str, name: str) -> None:
    s = synth(stack)
    assert granted(s, name) == declared(s, name) | own_needs(name)


@pytest.mark.parametrize("stack", STACKS)
def test_the_sweeper_may_redrive_the_ledgers_dlq_and_touch_no_other_queue(synth: SynthFn, stack: str) -> None:
    """Written out, not derived from the spec's access: receive and delete on the ledger's DLQ (and make a
    kept message visible again), send on the ledger queue; its own DLQ for failed schedule events."""
    s = synth(stack)
    sqs = {(action, resource) for action, resource in granted(s, "reconciler") if action.startswith("sqs:")}
    assert sqs == {
        ("sqs:ReceiveMessage", "ledger-dlq"),
        ("sqs:DeleteMessage", "ledger-dlq"),
        ("sqs:ChangeMessageVisibility", "ledger-dlq"),
        ("sqs:SendMessage", "ledger-queue"),
        ("sqs:GetQueueAttributes", "reconciler-dlq-queue"),
        ("sqs:SendMessage", "reconciler-dlq-queue"),
    }
    variables = function(s, "reconciler").inputs["environment"]["variables"]
    assert variables[contract.ENV_LEDGER_QUEUE_URL] == out(s.named("ledger-queue"))["url"]
    assert variables[contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL] == out(s.named("ledger-dlq"))["url"]
    # Both queues are encrypted with the ledger queue's key: the sweeper may use it.
    ledger_key = by_arn(s)[_key_of(s.named("ledger-dlq"))]
    assert _key_of(s.named("ledger-dlq")) == _key_of(s.named("ledger-queue"))
    assert {(a, ledger_key) for a in ("kms:Decrypt", "kms:GenerateDataKey")} <= granted(
        s, "reconciler", kms=True
    )


def test_a_dead_letter_source_naming_a_queue_without_one_stops_the_program(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL
    monkeypatch.setitem(payment_chain.ENVIRONMENT_SOURCES, var, payment_chain.FromDeadLetterQueue("ledgr"))
    with pytest.raises(
        ValueError,
        match=rf"function reconciler: {var} names the dead-letter queue of queue 'ledgr', which is not a "
        rf"queue of the payment chain; fix: FromDeadLetterQueue in the {var} row of infra/payment_chain.py "
        r"ENVIRONMENT_SOURCES names one of: funding-update, ledger, notifications, payment-processing, "
        r"transaction-check",
    ):
        synth("dev", config=read_stack_config("dev"))


def test_the_ledger_stays_append_only_and_the_notifier_only_reads_the_money_tables(synth: SynthFn) -> None:
    s = synth("dev")
    writes = {"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    ledger = {
        action for action, resource in granted(s, "ledger_recorder") if resource == "transactions-table"
    }
    assert ledger == {"dynamodb:PutItem"}, "rows are only ever added (conditional puts)"
    for table in ("payments-table", "fundings-table"):
        notifier = {a for a, r in granted(s, "notifier") if r.split("/")[0] == table}
        assert notifier and not notifier & writes, f"the notifier may not write {table}"


@pytest.mark.parametrize("name", catalog.function_names())
def test_a_query_on_an_index_grants_nothing_else_on_that_index(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    on_indexes = {action for action, resource in granted(s, name) if "/index/" in resource}
    assert on_indexes <= {"dynamodb:Query", "dynamodb:Scan"}
    assert {(a, r) for a, r in granted(s, name) if "/index/" in r} == {
        (a, r) for a, r in declared(s, name) if "/index/" in r
    }


@pytest.mark.parametrize("name", catalog.function_names())
def test_dev_uses_the_platform_key_for_everything(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    assert [k.name for k in s.of_type("aws:kms/key:Key")] == ["platform-key"]
    assert {resource for _, resource in granted(s, name, kms=True)} == {"platform-key"}


def _key_of(resource: DeclaredResource) -> str:
    inputs = resource.inputs
    if resource.type == "aws:dynamodb/table:Table":
        return str(inputs["serverSideEncryption"]["kmsKeyArn"])
    return str(inputs["kmsMasterKeyId"])


@pytest.mark.parametrize("name", catalog.function_names())
def test_prod_grants_the_own_keys_of_exactly_the_resources_a_function_uses(synth: SynthFn, name: str) -> None:
    s = synth("prod")
    arns = by_arn(s)
    kms = granted(s, name, kms=True)
    use = {r for a, r in kms if a == "kms:GenerateDataKey"}
    decrypt_only = {r for a, r in kms if a == "kms:Decrypt"} - use
    reached = {resource.partition("/index/")[0] for _, resource in declared(s, name) | own_needs(name)}
    encrypted = {
        resource
        for resource in reached
        if resource.endswith(("-table", "-topic", "-queue", "-dlq"))
        and resource != EXPECTED_SOURCES.get(name)
    }
    assert use == {arns[_key_of(s.named(resource))] for resource in encrypted}
    consumed = {arns[_key_of(s.named(EXPECTED_SOURCES[name]))]} if name in EXPECTED_SOURCES else set()
    # The environment is encrypted with the function's own log key; the role decrypts it at start.
    environment = {arns[s.named(f"{component(name)}-logs").inputs["kmsKeyId"]]}
    assert decrypt_only == (consumed | environment) - use
    assert all(key.endswith("-key-key") for key in use | decrypt_only), "dedicated keys in prod"


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
        if inputs["protocol"] == "email":  # prod's alertEmail, on the ops-alerts topic only
            assert arns[inputs["topic"]] == "ops-alerts-topic"
            continue
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
        sizing = catalog.spec_of(name).sizing
        assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["batchSize"] == sizing.batch_size
        assert mapping["maximumBatchingWindowInSeconds"] == sizing.batching_window_seconds
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
    scheduled = [spec for spec in catalog.all_specs() if isinstance(spec.trigger, Schedule)]
    assert watched == dead_letter_queues and len(watched) == len(catalog.queue_consumers()) + len(scheduled)
    assert {arns[alerts]} == {"ops-alerts-topic"}


@pytest.mark.parametrize("name", catalog.function_names())
def test_each_function_gets_exactly_the_environment_its_spec_declares(synth: SynthFn, name: str) -> None:
    s = synth("dev", config={**read_stack_config("dev"), "crowdfunding:sesSender": "notifications@mail.test"})
    spec = catalog.spec_of(name)
    variables = function(s, name).inputs["environment"]["variables"]
    assert set(variables) == set(spec.environment) | set(spec.optional_environment) | set(RUNTIME_ENVIRONMENT)
    assert variables["POWERTOOLS_SERVICE_NAME"] == name
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == contract.METRICS_NAMESPACE


def test_environment_values_point_at_the_right_resources_and_config(synth: SynthFn) -> None:
    config = {**read_stack_config("dev"), "crowdfunding:sesSender": "notifications@mail.test"}
    s = synth("dev", config=config)
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


def test_a_user_pool_adds_its_id_and_only_the_declared_cognito_grant(synth: SynthFn) -> None:
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
    (cognito,) = [st for st in role_statements(s, "notifier") if st["Sid"] == "CognitoUserPool"]
    actions = sorted(catalog.spec_of("notifier").access[contract.ENV_COGNITO_USER_POOL_ID])
    assert (cognito["Action"], cognito["Resource"]) == (actions, [pool_arn])


@pytest.mark.parametrize("stack", STACKS)
def test_functions_run_the_packaged_code_on_arm64_with_the_pinned_powertools_signed_as_a_layer(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    # Code signing enforces that every layer is signed too: the layer is the stack's own, built
    # from the pinned release's installed files (the very library the tests ran), signed like the code.
    (layer,) = s.of_type("aws:lambda/layerVersion:LayerVersion")
    (job,) = [j for j in s.of_type("aws:signer/signingJob:SigningJob") if j.name == "powertools-signing"]
    package = s.named("powertools-package", "aws:s3/bucketObjectv2:BucketObjectv2")
    assert package.inputs["source"]["fileAsset"].endswith("build/lambda/powertools-layer.zip")
    assert (layer.inputs["s3Bucket"], layer.inputs["s3Key"]) == signed_copy(job)
    assert layer.inputs["compatibleRuntimes"] == [packaging.RUNTIME]
    with zipfile.ZipFile(package.inputs["source"]["fileAsset"]) as archive:
        names = archive.namelist()
    assert f"python/aws_lambda_powertools-{packaging.POWERTOOLS_VERSION}.dist-info/METADATA" in names
    assert "python/aws_lambda_powertools/logging/logger.py" in names
    assert not [n for n in names if n.endswith(".pyc") or n.endswith("/RECORD")]
    for name in catalog.function_names():
        inputs = function(s, name).inputs
        assert inputs["runtime"] == packaging.RUNTIME and inputs["architectures"] == ["arm64"]
        assert inputs["handler"] == packaging.handler_of(name)
        assert inputs["layers"] == [out(layer)["arn"]]
        assert inputs["timeout"] == catalog.spec_of(name).sizing.timeout_seconds
        assert inputs["memorySize"] == catalog.spec_of(name).sizing.memory_mb


def test_the_layer_archive_is_deterministic_and_refuses_another_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = packaging.build_layer_archive(tmp_path / "a").read_bytes()
    assert packaging.build_layer_archive(tmp_path / "b").read_bytes() == first
    monkeypatch.setattr(packaging, "pinned_version", lambda name: "0.0.1")
    with pytest.raises(
        ValueError, match=r"is installed but requirements.lock pins 0.0.1; fix: `make install`"
    ):
        packaging.layer_files()


def test_opting_out_of_code_signing_deploys_the_archive_with_the_public_layer_of_the_pinned_release(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = aws.ssm.get_parameter_output

    def spy(**kwargs: Any) -> Any:
        asked.append(kwargs["name"])
        return real(**kwargs)

    monkeypatch.setattr(aws.ssm, "get_parameter_output", spy)
    cfg = parse("dev", read_stack_config("dev"))

    def program() -> None:
        payment_chain.declare_payment_chain(
            cfg,
            platform_key_arn="arn:aws:kms:ap-northeast-2:123456789012:key/platform",
            opts=pulumi.ResourceOptions(),
            code_signing=False,
        )

    s = synth(program=program)
    # The layer is the one AWS publishes for the release requirements.lock pins (offline: a stand-in number).
    assert asked == [f"/aws/service/powertools/python/arm64/python3.11/{packaging.POWERTOOLS_VERSION}"]
    layer = packaging.powertools_layer_arn("ap-northeast-2", "arm64", version=OFFLINE_LAYER_VERSION)
    assert not s.of_type("aws:signer/signingJob:SigningJob")
    for name in catalog.function_names():
        inputs = function(s, name).inputs
        assert inputs["layers"] == [layer]
        assert inputs["code"]["fileArchive"].endswith(f"build/lambda/{name}.zip")
        assert "codeSigningConfigArn" not in inputs


@pytest.mark.parametrize("stack", STACKS)
def test_every_function_deploys_the_signed_copy_of_its_own_archive_under_an_enforcing_config(
    synth: SynthFn, stack: str
) -> None:
    s = synth(stack)
    (config,) = s.of_type("aws:lambda/codeSigningConfig:CodeSigningConfig")
    (profile,) = s.of_type("aws:signer/signingProfile:SigningProfile")
    assert profile.inputs["platformId"] == "AWSLambda-SHA384-ECDSA"
    assert config.inputs["policies"] == {"untrustedArtifactOnDeployment": "Enforce"}
    assert config.inputs["allowedPublishers"]["signingProfileVersionArns"] == [out(profile)["versionArn"]]
    bucket = s.named("code-signing-artifacts", "aws:s3/bucket:Bucket")
    versioning = s.named("code-signing-artifacts-versioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    for name in catalog.function_names():
        inputs = function(s, name).inputs
        assert "code" not in inputs
        assert inputs["codeSigningConfigArn"] == out(config)["arn"]
        package = s.named(f"{component(name)}-package", "aws:s3/bucketObjectv2:BucketObjectv2")
        assert package.inputs["source"]["fileAsset"].endswith(f"build/lambda/{name}.zip")
        assert package.inputs["bucket"] == bucket.id
        job = s.named(f"{component(name)}-signing", "aws:signer/signingJob:SigningJob")
        # The job signs exactly the uploaded object's version, with the stack's profile.
        assert job.inputs["source"]["s3"] == {
            "bucket": bucket.id,
            "key": package.inputs["key"],
            "version": package.state["versionId"],
        }
        assert job.inputs["profileName"] == out(profile)["name"]
        assert (inputs["s3Bucket"], inputs["s3Key"]) == signed_copy(job)
        assert inputs["s3Key"].startswith("signed/") and inputs["s3Key"] != package.inputs["key"]


def signed_copy(job: DeclaredResource) -> tuple[str, str]:
    """(bucket, key) of the signed object a signing job reports."""
    (signed,) = job.state["signedObjects"]
    (s3,) = signed["s3s"]
    return s3["bucket"], s3["key"]


@pytest.mark.parametrize("name", ["campaign_closer", "reconciler"])
def test_schedules_invoke_the_closer_and_the_reconciler(synth: SynthFn, name: str) -> None:
    s = synth("dev")
    component = name.replace("_", "-")
    rule, target = s.named(f"{component}-schedule"), s.named(f"{component}-target")
    assert (
        rule.inputs["scheduleExpression"] == catalog.schedule_of(catalog.spec_of(name)) == "rate(5 minutes)"
    )
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
        "byOwed",
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
    assert set(outputs["functionNames"]) == set(catalog.function_names())


def test_an_environment_variable_the_table_does_not_map_stops_the_program(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(payment_chain.ENVIRONMENT_SOURCES, contract.ENV_PG_SEED)
    with pytest.raises(ValueError, match=r"function pg_gateway declares environment variable PG_SEED, which"):
        synth("dev", config=read_stack_config("dev"))


# --- access declarations that cannot become grants --------------------------------------------

SYNTHETIC = "orders_worker"
"""A synthetic function (lambdas/specs/orders_worker.py) whose declarations each test sets."""
PAYMENTS = contract.PAYMENTS_TABLE.env_var
LEDGER = contract.TRANSACTIONS_TABLE.env_var


def synthetic(
    environment: tuple[str, ...],
    access: dict[str, tuple[str, ...]],
    optional: tuple[str, ...] = (),
) -> FunctionSpec:
    """The spec of a function `orders_worker` declaring `environment` and `access`."""
    return FunctionSpec(
        name=SYNTHETIC,
        trigger=InvokedOnly(),
        environment=environment,
        optional_environment=optional,
        access=access,
        sizing=Sizing(timeout_seconds=30),
    )


def test_a_declaration_that_matches_has_no_problem() -> None:
    spec = synthetic(
        (PAYMENTS, contract.ENV_PAYMENTS_TOPIC_ARN, contract.ENV_RETRY_MAX_ATTEMPTS),
        {
            PAYMENTS: ("dynamodb:GetItem", f"dynamodb:Query@{contract.PAYMENTS_BY_FUNDING_INDEX}"),
            contract.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",),
        },
        optional=(contract.ENV_COGNITO_USER_POOL_ID,),
    )
    assert payment_chain.access_problems(spec) == [
        f"function {SYNTHETIC}: COGNITO_USER_POOL_ID names the Cognito user pool but access has no entry for "
        f"it; fix: add `COGNITO_USER_POOL_ID: (...)` to access in lambdas/specs/{SYNTHETIC}.py with the "
        "exact actions the function calls on it; allowed: cognito-idp:AdminGetUser, cognito-idp:ListUsers"
    ], "an optional resource variable needs its entry too (stacks that provide it grant it)"


PAYMENT_INDEXES = ", ".join(index.name for index in contract.PAYMENTS_TABLE.indexes)


@pytest.mark.parametrize(
    ("environment", "access", "message"),
    [
        (
            (LEDGER, contract.ENV_PAYMENTS_TOPIC_ARN),
            {LEDGER: ("dynamodb:PutItem",)},
            rf"function {SYNTHETIC}: PAYMENTS_TOPIC_ARN names topic payments but access has no entry for it; "
            rf"fix: add `PAYMENTS_TOPIC_ARN: \(\.\.\.\)` to access in lambdas/specs/{SYNTHETIC}.py with "
            r"the exact actions the function calls on it; allowed: sns:Publish",
        ),
        (
            (LEDGER,),
            {LEDGER: ("dynamodb:PutItem",), contract.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish",)},
            rf"function {SYNTHETIC}: access names PAYMENTS_TOPIC_ARN, which its environment and "
            rf"optional_environment do not declare; fix: declare PAYMENTS_TOPIC_ARN in "
            rf"lambdas/specs/{SYNTHETIC}.py environment \(or optional_environment\), or remove the access "
            r"entry",
        ),
        (
            (LEDGER, contract.ENV_PG_SEED),
            {LEDGER: ("dynamodb:PutItem",), contract.ENV_PG_SEED: ("dynamodb:GetItem",)},
            rf"function {SYNTHETIC}: access names PG_SEED, whose value is stack config pgSeed, not an AWS "
            rf"resource, so no action can be granted on it; fix: remove the entry from access in "
            rf"lambdas/specs/{SYNTHETIC}.py",
        ),
        (
            (LEDGER,),
            {LEDGER: ("sqs:SendMessage",)},
            rf"function {SYNTHETIC}: access\[TRANSACTIONS_TABLE\] \(on table transactions\): "
            r"'sqs:SendMessage' is not a dynamodb action, and a DynamoDB table takes only dynamodb actions; "
            r"allowed: "
            rf"dynamodb:BatchGetItem, .*; fix: list in lambdas/specs/{SYNTHETIC}.py only the actions it "
            r"calls",
        ),
        (
            (LEDGER,),
            {LEDGER: ("dynamodb:TransactWriteItems",)},
            r"'dynamodb:TransactWriteItems' is not an IAM action: IAM authorizes it as dynamodb:PutItem, "
            r"dynamodb:UpdateItem, dynamodb:DeleteItem or dynamodb:ConditionCheckItem",
        ),
        (
            (contract.ENV_PAYMENTS_TOPIC_ARN,),
            {contract.ENV_PAYMENTS_TOPIC_ARN: ("sns:Publish", "dynamodb:PutItem")},
            r"access\[PAYMENTS_TOPIC_ARN\] \(on topic payments\): 'dynamodb:PutItem' is not an sns "
            r"action, and an SNS topic takes only sns actions; allowed: sns:Publish",
        ),
        (
            (LEDGER,),
            {LEDGER: ("dynamodb:Query@byFunding",)},
            rf"function {SYNTHETIC}: access\[TRANSACTIONS_TABLE\] \(on table transactions\): "
            r"'dynamodb:Query@byFunding' names index 'byFunding', which table transactions does not have; "
            r"allowed: none \(the table has no index\)",
        ),
        (
            (PAYMENTS,),
            {PAYMENTS: ("dynamodb:GetItem", "dynamodb:Query@byCampaign")},
            rf"'dynamodb:Query@byCampaign' names index 'byCampaign', which table payments does not have; "
            rf"allowed: {PAYMENT_INDEXES} \(lambdas.shared.contract TABLES declares each table's indexes\)",
        ),
        (
            (PAYMENTS,),
            {PAYMENTS: (f"dynamodb:GetItem@{contract.PAYMENTS_BY_FUNDING_INDEX}",)},
            rf"access\[PAYMENTS_TABLE\] \(on table payments\): index {contract.PAYMENTS_BY_FUNDING_INDEX}: "
            r"'dynamodb:GetItem' is not an action on a DynamoDB index; "
            r"allowed: dynamodb:Query, dynamodb:Scan",
        ),
        (
            (contract.ENV_PG_GATEWAY_FUNCTION,),
            {contract.ENV_PG_GATEWAY_FUNCTION: ("lambda:InvokeFunction@byFunding",)},
            r"access\[PG_GATEWAY_FUNCTION_NAME\] \(on function pg_gateway\): "
            r"'lambda:InvokeFunction@byFunding' names an index, but only a table variable takes "
            r"'<action>@<index>'",
        ),
        (
            (contract.ENV_SES_SENDER,),
            {contract.ENV_SES_SENDER: ()},
            r"access\[SES_SENDER\] \(on the SES sender identity\) lists no actions; "
            r"fix: list the actions the function calls on it \(allowed: ses:SendEmail, ses:SendRawEmail\), "
            rf"or drop SES_SENDER from its environment in lambdas/specs/{SYNTHETIC}.py",
        ),
        (
            (contract.ENV_PAYMENT_PROCESSING_QUEUE_URL,),
            {contract.ENV_PAYMENT_PROCESSING_QUEUE_URL: ("sqs:SendMessageBatch",)},
            r"'sqs:SendMessageBatch' is not an IAM action: IAM authorizes it as sqs:SendMessage",
        ),
        (
            (contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL,),
            {contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL: ("sqs:ReceiveMessage", "sns:Publish")},
            r"access\[LEDGER_DEAD_LETTER_QUEUE_URL\] \(on the dead-letter queue of queue ledger\): "
            r"'sns:Publish' is not an sqs action",
        ),
        (
            (contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL,),
            {},
            rf"function {SYNTHETIC}: LEDGER_DEAD_LETTER_QUEUE_URL names the dead-letter queue of queue "
            r"ledger but access has no entry for it; .*allowed: sqs:ChangeMessageVisibility, "
            r"sqs:DeleteMessage, sqs:GetQueueAttributes, sqs:GetQueueUrl, sqs:ReceiveMessage, "
            r"sqs:SendMessage",
        ),
        (
            ("ORDERS_BUCKET",),
            {},
            rf"function {SYNTHETIC} declares environment variable ORDERS_BUCKET, which "
            r"infra/payment_chain.py ENVIRONMENT_SOURCES does not map; allowed: .* \(fix the name in "
            rf"lambdas/specs/{SYNTHETIC}.py, or add a row to ENVIRONMENT_SOURCES for a new one\)",
        ),
    ],
)
def test_each_declaration_problem_names_the_function_the_variable_and_the_fix(
    environment: tuple[str, ...], access: dict[str, tuple[str, ...]], message: str
) -> None:
    problems = payment_chain.access_problems(synthetic(environment, access))
    assert len(problems) == 1, problems
    assert re.search(message, problems[0]), problems[0]


def test_every_problem_of_every_function_is_reported_at_once() -> None:
    spec = synthetic((LEDGER, contract.ENV_PAYMENTS_TOPIC_ARN), {LEDGER: ("dynamodb:Scan@x",)})
    with pytest.raises(payment_chain.AccessDeclarationError) as raised:
        payment_chain.check_access([spec, *catalog.all_specs()])
    assert len(raised.value.problems) == 2, "the committed functions' declarations have none"
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(
        "the functions' AWS access declarations (access in lambdas/specs/<function>.py)"
    )
    assert [line.removeprefix("  - ") for line in lines[1:]] == raised.value.problems


def test_a_bad_declaration_stops_the_program_before_any_resource_is_declared(
    synth: SynthFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = catalog.all_specs()[-1]
    access = dict(victim.access)
    var = next(iter(access))
    access[var] = ("sqs:PurgeQueue",)
    broken = dataclasses.replace(victim, access=access)
    monkeypatch.setattr(catalog, "SPECS", (*catalog.SPECS[:-1], broken))

    def unreachable(**_: object) -> None:
        raise AssertionError("a resource was declared before the access declarations were checked")

    monkeypatch.setattr(payment_chain, "declare_tables", unreachable)
    with pytest.raises(
        payment_chain.AccessDeclarationError,
        match=rf"function {victim.name}: access\[{var}\] .*fix: list in lambdas/specs/{victim.name}.py",
    ):
        synth("dev", config=read_stack_config("dev"))
