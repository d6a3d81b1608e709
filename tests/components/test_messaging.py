"""Messaging components: secure defaults, explicit opt-outs, wiring and declaration errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from awsblocks.functions.function import Function, FunctionArgs
from awsblocks.functions.queue_function import QueueFunction, QueueFunctionArgs
from awsblocks.functions.scheduled_function import ScheduledFunction, ScheduledFunctionArgs
from awsblocks.messaging.queue import Queue, QueueArgs, QueueRef
from awsblocks.messaging.subscription import TopicFeed
from awsblocks.messaging.topic import Topic, TopicArgs
from awsblocks.security import iam
from awsblocks.testing import MOCK_ACCOUNT_ID, DeclaredResource, OfflineMocks, Synthesis
from pulumi.runtime.mocks import MockResourceArgs

from tests.conftest import TEST_REGION, SynthFn

ALARM_TOPIC = f"arn:aws:sns:{TEST_REGION}:{MOCK_ACCOUNT_ID}:alerts"
SHARED_KEY = f"arn:aws:kms:{TEST_REGION}:{MOCK_ACCOUNT_ID}:key/shared"
ROOT = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:root"


def queue_ref(visibility_timeout_seconds: int) -> QueueRef:
    """A queue declared elsewhere (no resources needed to test the refusals)."""
    arn = pulumi.Output.from_input(f"arn:aws:sqs:{TEST_REGION}:{MOCK_ACCOUNT_ID}:work")
    return QueueRef(arn, arn, arn, visibility_timeout_seconds, None)


def out(resource: DeclaredResource) -> dict[str, Any]:
    """The outputs the mocks give a resource (its arn, url, name …), computed the same way."""
    args = MockResourceArgs(resource.type, resource.name, resource.inputs, custom=True)
    return OfflineMocks(TEST_REGION).new_resource(args)[1]


def policy(resource: DeclaredResource) -> dict[str, Any]:
    document = json.loads(resource.inputs["policy"])
    assert isinstance(document, dict)
    return document


def statements(resource: DeclaredResource) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy(resource)["Statement"]}


@pytest.fixture
def code(tmp_path: Path) -> str:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return None\n")
    return str(tmp_path)


# --- Queue ------------------------------------------------------------------------------------


def test_a_queue_gets_a_dead_letter_queue_an_own_rotating_key_and_an_alarm_by_default(synth: SynthFn) -> None:
    s = synth(program=lambda: Queue("jobs", QueueArgs(alarm_topic_arn=ALARM_TOPIC)))
    queue, dlq = s.named("jobs-queue"), s.named("jobs-dlq")
    (key,) = s.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert queue.inputs["kmsMasterKeyId"] == dlq.inputs["kmsMasterKeyId"] == out(key)["arn"]
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": out(dlq)["arn"],
        "maxReceiveCount": 5,
    }
    assert dlq.inputs["messageRetentionSeconds"] > queue.inputs["messageRetentionSeconds"]
    assert "redrivePolicy" not in dlq.inputs
    allow = json.loads(s.named("jobs-dlq-redrive-allow").inputs["redriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [out(queue)["arn"]]}
    (alarm,) = s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["dimensions"] == {"QueueName": out(dlq)["name"]}
    assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm.inputs["alarmActions"] == [ALARM_TOPIC]


def test_max_receive_count_and_shared_key_are_honoured(synth: SynthFn) -> None:
    s = synth(
        program=lambda: Queue(
            "jobs", QueueArgs(alarm_topic_arn=ALARM_TOPIC, max_receive_count=8, kms_key_arn=SHARED_KEY)
        )
    )
    assert json.loads(s.named("jobs-queue").inputs["redrivePolicy"])["maxReceiveCount"] == 8
    assert s.of_type("aws:kms/key:Key") == []
    assert {q.inputs["kmsMasterKeyId"] for q in s.of_type("aws:sqs/queue:Queue")} == {SHARED_KEY}


def test_every_queue_policy_allows_only_the_owner_and_denies_plain_http(synth: SynthFn) -> None:
    s = synth(program=lambda: Queue("jobs", QueueArgs(alarm_topic_arn=ALARM_TOPIC)))
    for queue in s.of_type("aws:sqs/queue:Queue"):
        (queue_policy,) = [
            p
            for p in s.of_type("aws:sqs/queuePolicy:QueuePolicy")
            if p.inputs["queueUrl"] == out(queue)["url"]
        ]
        found = statements(queue_policy)
        assert set(found) == {"OwnerOnly", "DenyInsecureTransport"}
        assert found["OwnerOnly"]["Principal"] == {"AWS": ROOT}
        assert found["OwnerOnly"]["Resource"] == out(queue)["arn"]
        deny = found["DenyInsecureTransport"]
        assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*")
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_opting_out_of_the_dead_letter_queue_is_explicit_and_leaves_no_alarm(synth: SynthFn) -> None:
    s = synth(program=lambda: Queue("scratch", QueueArgs(dead_letter_queue=False)))
    assert [q.name for q in s.of_type("aws:sqs/queue:Queue")] == ["scratch-queue"]
    assert "redrivePolicy" not in s.named("scratch-queue").inputs
    assert s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") == []


def test_a_queue_that_is_a_dead_letter_queue_alarms_on_its_own_depth(synth: SynthFn) -> None:
    s = synth(
        program=lambda: Queue(
            "parked",
            QueueArgs(alarm_topic_arn=ALARM_TOPIC, dead_letter_queue=False, is_dead_letter_queue=True),
        )
    )
    (queue,) = s.of_type("aws:sqs/queue:Queue")
    (alarm,) = s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["dimensions"] == {"QueueName": out(queue)["name"]}
    assert alarm.inputs["alarmActions"] == [ALARM_TOPIC]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"Queue q: alarm_topic_arn=None; allowed: an SNS topic ARN"),
        (
            {"alarm_topic_arn": ALARM_TOPIC, "message_retention_seconds": 1_209_600},
            r"dead_letter_retention_seconds=1209600 is not longer than message_retention_seconds=1209600",
        ),
        (
            {"alarm_topic_arn": ALARM_TOPIC, "max_receive_count": 0},
            r"max_receive_count=0; allowed: 1 to 1000",
        ),
        ({"alarm_topic_arn": ALARM_TOPIC, "is_dead_letter_queue": True}, r"pass dead_letter_queue=False"),
    ],
)
def test_bad_queue_arguments_are_refused_with_a_message(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Queue("q", QueueArgs(**kwargs))


def test_two_topics_feed_one_queue_through_one_policy(synth: SynthFn) -> None:
    def program() -> None:
        a = Topic("a", TopicArgs(kms_key_arn=SHARED_KEY))
        b = Topic("b", TopicArgs(kms_key_arn=SHARED_KEY))
        Queue(
            "inbox",
            QueueArgs(
                alarm_topic_arn=ALARM_TOPIC,
                kms_key_arn=SHARED_KEY,
                subscriptions=[
                    TopicFeed(a.arn, {"type": ["x.created"]}, name="a"),
                    TopicFeed(b.arn, name="b"),
                ],
            ),
        )

    s = synth(program=program)
    queue = s.named("inbox-queue")
    topic_a, topic_b = out(s.named("a-topic"))["arn"], out(s.named("b-topic"))["arn"]
    (queue_policy,) = [
        p for p in s.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == out(queue)["url"]
    ]
    found = statements(queue_policy)
    assert set(found) == {"OwnerOnly", "DenyInsecureTransport", "TopicaSends", "TopicbSends"}
    for sid, topic in (("TopicaSends", topic_a), ("TopicbSends", topic_b)):
        assert found[sid]["Principal"] == {"Service": "sns.amazonaws.com"}
        assert found[sid]["Action"] == "sqs:SendMessage"
        assert found[sid]["Condition"] == {"ArnEquals": {"aws:SourceArn": topic}}
    subscriptions = {
        r.inputs["topic"]: r.inputs for r in s.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert set(subscriptions) == {topic_a, topic_b}
    assert all(
        sub["protocol"] == "sqs" and sub["endpoint"] == out(queue)["arn"] for sub in subscriptions.values()
    )
    assert all(sub["rawMessageDelivery"] is True for sub in subscriptions.values())
    assert json.loads(subscriptions[topic_a]["filterPolicy"]) == {"type": ["x.created"]}
    assert subscriptions[topic_a]["filterPolicyScope"] == "MessageAttributes"
    assert "filterPolicy" not in subscriptions[topic_b]


# --- Topic ------------------------------------------------------------------------------------


def test_a_topic_is_encrypted_with_its_own_rotating_key_owner_only_and_tls_only(synth: SynthFn) -> None:
    s = synth(
        program=lambda: Topic(
            "events", TopicArgs(publisher_services=["cloudwatch"], email_subscriptions=["ops@example.com"])
        )
    )
    (key,) = s.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    services = {st["Sid"]: st for st in json.loads(key.inputs["policy"])["Statement"]}[
        "ServicesUseForThisAccount"
    ]
    assert services["Principal"]["Service"] == [
        "cloudwatch.amazonaws.com",
        "sns.amazonaws.com",
        "sqs.amazonaws.com",
    ]
    topic = s.named("events-topic")
    assert topic.inputs["kmsMasterKeyId"] == out(key)["arn"]
    found = statements(s.named("events-policy"))
    assert set(found) == {"OwnerOnly", "ServicesPublishForThisAccount", "DenyInsecureTransport"}
    assert found["OwnerOnly"]["Principal"] == {"AWS": ROOT}
    assert found["ServicesPublishForThisAccount"]["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert found["ServicesPublishForThisAccount"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}
    }
    assert found["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {st["Resource"] for st in found.values()} == {out(topic)["arn"]}
    (email,) = s.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert (email.inputs["protocol"], email.inputs["endpoint"]) == ("email", "ops@example.com")


def test_a_topic_without_publisher_services_has_no_service_statement(synth: SynthFn) -> None:
    s = synth(program=lambda: Topic("events", TopicArgs(kms_key_arn=SHARED_KEY)))
    assert s.of_type("aws:kms/key:Key") == []
    assert s.named("events-topic").inputs["kmsMasterKeyId"] == SHARED_KEY
    assert set(statements(s.named("events-policy"))) == {"OwnerOnly", "DenyInsecureTransport"}
    assert s.of_type("aws:sns/topicSubscription:TopicSubscription") == []


# --- functions --------------------------------------------------------------------------------

TABLE_ARN = f"arn:aws:dynamodb:{TEST_REGION}:{MOCK_ACCOUNT_ID}:table/orders"
OTHER_TOPIC = f"arn:aws:sns:{TEST_REGION}:{MOCK_ACCOUNT_ID}:shipped"


def consumer(synth: SynthFn, code: str, **kwargs: Any) -> Synthesis:
    def program() -> None:
        queue = Queue(
            "work",
            QueueArgs(alarm_topic_arn=ALARM_TOPIC, visibility_timeout_seconds=180, kms_key_arn=SHARED_KEY),
        )
        args: dict[str, Any] = {
            "queue": queue,
            "code": code,
            "handler": "app.handler",
            "timeout_seconds": 30,
            "grants": [
                iam.dynamodb_read_write(TABLE_ARN, [f"{TABLE_ARN}/index/byX"]),
                iam.sns_publish(OTHER_TOPIC),
            ],
        }
        args.update(kwargs)
        QueueFunction("worker", QueueFunctionArgs(**args))

    return synth(program=program)


def test_a_queue_function_reports_batch_item_failures_with_its_batching_settings(
    synth: SynthFn, code: str
) -> None:
    s = consumer(synth, code, batch_size=25, batching_window_seconds=2, maximum_concurrency=4)
    (mapping,) = s.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["eventSourceArn"] == out(s.named("work-queue"))["arn"]
    assert mapping.inputs["functionName"] == out(s.named("worker-function"))["arn"]
    assert (mapping.inputs["batchSize"], mapping.inputs["maximumBatchingWindowInSeconds"]) == (25, 2)
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 4}


def test_a_function_always_sets_runtime_timeout_memory_architecture_and_its_own_log_group(
    synth: SynthFn, code: str
) -> None:
    s = consumer(
        synth,
        code,
        environment={"MODE": "test"},
        layers=["arn:aws:lambda:x:1:layer:l:1"],
        architecture="x86_64",
    )
    function = s.named("worker-function")
    assert function.inputs["runtime"] == "python3.12"
    assert (function.inputs["timeout"], function.inputs["memorySize"]) == (30, 256)
    assert function.inputs["architectures"] == ["x86_64"]
    assert function.inputs["environment"] == {"variables": {"MODE": "test"}}
    assert function.inputs["layers"] == ["arn:aws:lambda:x:1:layer:l:1"]
    log_group = s.named("worker-logs")
    assert function.inputs["loggingConfig"]["logGroup"] == out(log_group)["name"]
    assert log_group.inputs["retentionInDays"] == 30
    (log_key,) = s.of_type("aws:kms/key:Key")
    assert log_group.inputs["kmsKeyId"] == out(log_key)["arn"]
    key_policy = {st["Sid"] for st in json.loads(log_key.inputs["policy"])["Statement"]}
    assert "CloudWatchLogsEncryptsThisAccountsLogGroups" in key_policy


def test_the_role_holds_only_the_declared_grants_its_logs_and_its_queue(synth: SynthFn, code: str) -> None:
    s = consumer(synth, code, log_kms_key_arn=SHARED_KEY)
    found = statements(s.named("worker-permissions"))
    queue_arn = out(s.named("work-queue"))["arn"]
    log_arn = out(s.named("worker-logs"))["arn"]
    assert {sid: (sorted(st["Action"]), st["Resource"]) for sid, st in found.items()} == {
        "DynamoDBReadWriteTable": (
            sorted(iam.DYNAMODB_READ_ACTIONS + iam.DYNAMODB_WRITE_ACTIONS),
            [TABLE_ARN, f"{TABLE_ARN}/index/byX"],
        ),
        "SNSPublishTopic": (["sns:Publish"], [OTHER_TOPIC]),
        "LogsWriteOwnLogGroup": (["logs:CreateLogStream", "logs:PutLogEvents"], [log_arn, f"{log_arn}:*"]),
        "SQSConsumeSource": (
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            [queue_arn],
        ),
        "KMSDecryptSourceQueue": (["kms:Decrypt"], [SHARED_KEY]),
        "XRayTraces": (["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
    }
    assert all(st["Effect"] == "Allow" for st in found.values())
    assume = json.loads(s.named("worker-role").inputs["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_a_function_traces_and_encrypts_its_environment_with_its_log_key_by_default(
    synth: SynthFn, code: str
) -> None:
    s = consumer(synth, code, environment={"MODE": "test"}, reserved_concurrency=4, maximum_concurrency=4)
    function = s.named("worker-function")
    (log_key,) = s.of_type("aws:kms/key:Key")
    assert function.inputs["tracingConfig"] == {"mode": "Active"}
    assert function.inputs["kmsKeyArn"] == out(log_key)["arn"], "no second key: the log key serves"
    assert function.inputs["reservedConcurrentExecutions"] == 4
    found = statements(s.named("worker-permissions"))
    assert found["KMSDecryptEnvironment"]["Action"] == ["kms:Decrypt"]
    assert found["KMSDecryptEnvironment"]["Resource"] == [out(log_key)["arn"]]
    assert found["XRayTraces"]["Resource"] == ["*"]


def test_a_given_environment_key_is_used_and_tracing_can_be_turned_off(synth: SynthFn, code: str) -> None:
    s = consumer(synth, code, environment={"MODE": "test"}, environment_kms_key_arn=SHARED_KEY, tracing=False)
    function = s.named("worker-function")
    assert function.inputs["kmsKeyArn"] == SHARED_KEY
    assert function.inputs["tracingConfig"] == {"mode": "PassThrough"}
    found = statements(s.named("worker-permissions"))
    assert "XRayTraces" not in found
    assert found["KMSDecryptEnvironment"]["Resource"] == [SHARED_KEY]


def test_a_function_without_environment_sets_no_environment_key(synth: SynthFn, code: str) -> None:
    s = consumer(synth, code)
    assert "kmsKeyArn" not in s.named("worker-function").inputs
    assert "KMSDecryptEnvironment" not in statements(s.named("worker-permissions"))


def test_a_visibility_timeout_below_six_times_the_function_timeout_is_refused(code: str) -> None:
    with pytest.raises(ValueError) as caught:
        QueueFunction(
            "worker",
            QueueFunctionArgs(queue=queue_ref(170), code=code, handler="app.handler", timeout_seconds=30),
        )
    assert str(caught.value) == (
        "QueueFunction worker: the queue's visibility timeout is 170 s, below 6 x timeout_seconds (30 s) "
        "= 180 s; allowed: a queue visibility timeout of at least 180 s (raise the queue's "
        "visibility_timeout_seconds or lower timeout_seconds)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"grants": [{"Action": "s3:*", "Resource": "*"}]},
            r"grants has .*allowed: awsblocks.security.iam.Grant objects",
        ),
        ({"runtime": "python3.8"}, r"runtime='python3.8'; allowed: python3.11, python3.12, python3.13"),
        ({"architecture": "sparc"}, r"architecture='sparc'; allowed: arm64, x86_64"),
        ({"timeout_seconds": 901}, r"timeout_seconds=901; allowed: 1 to 900"),
        ({"memory_mb": 64}, r"memory_mb=64; allowed: 128 to 10240"),
        ({"batch_size": 50}, r"batch_size=50 with batching_window_seconds=0"),
        ({"maximum_concurrency": 1}, r"maximum_concurrency=1; allowed: 2 to 1000"),
        (
            {"maximum_concurrency": 10, "reserved_concurrency": 5},
            r"reserved_concurrency=5 is below maximum_concurrency=10, so the mapping's pollers would be "
            r"throttled",
        ),
        ({"code": "/nonexistent/build.zip"}, r"code='/nonexistent/build.zip' does not exist"),
    ],
)
def test_bad_function_arguments_are_refused_with_a_message(
    code: str, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"queue": queue_ref(900), "code": code, "handler": "app.handler"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        QueueFunction("worker", QueueFunctionArgs(**args))


def test_a_wildcard_grant_is_refused_before_it_reaches_a_role() -> None:
    with pytest.raises(ValueError, match="wildcards are refused"):
        iam.Grant("Everything", ("s3:*",), (TABLE_ARN,))


def test_a_plain_function_has_no_trigger_and_only_its_grants(synth: SynthFn, code: str) -> None:
    s = synth(
        program=lambda: Function(
            "gateway", FunctionArgs(code=code, handler="app.handler", log_kms_key_arn=SHARED_KEY)
        )
    )
    assert s.of_type("aws:lambda/eventSourceMapping:EventSourceMapping") == []
    assert s.of_type("aws:lambda/permission:Permission") == []
    assert set(statements(s.named("gateway-permissions"))) == {"LogsWriteOwnLogGroup", "XRayTraces"}


def test_a_scheduled_function_retries_then_parks_events_in_an_alarmed_dead_letter_queue(
    synth: SynthFn, code: str
) -> None:
    def program() -> None:
        ScheduledFunction(
            "tick",
            ScheduledFunctionArgs(
                code=code,
                handler="app.handler",
                schedule_expression="rate(5 minutes)",
                alarm_topic_arn=ALARM_TOPIC,
                retry_attempts=3,
                maximum_event_age_seconds=900,
            ),
        )

    s = synth(program=program)
    rule, target = s.named("tick-schedule"), s.named("tick-target")
    dlq, function = s.named("tick-dlq-queue"), s.named("tick-function")
    assert rule.inputs["scheduleExpression"] == "rate(5 minutes)"
    assert target.inputs["arn"] == out(function)["arn"]
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 900}
    assert target.inputs["deadLetterConfig"] == {"arn": out(dlq)["arn"]}
    assert function.inputs["deadLetterConfig"] == {"targetArn": out(dlq)["arn"]}
    events_send = statements(s.named("tick-dlq-policy"))["eventsScheduleSends"]
    assert events_send["Principal"] == {"Service": "events.amazonaws.com"}
    assert events_send["Condition"] == {"ArnEquals": {"aws:SourceArn": out(rule)["arn"]}}
    dlq_key = s.named("tick-dlq-queue-key-key")
    key_services = {st["Sid"]: st for st in json.loads(dlq_key.inputs["policy"])["Statement"]}
    # EventBridge's key grant: the SQS path, not aws:SourceAccount (tests/infra/test_kms_conditions.py).
    assert key_services["EventBridgeWritesThisAccountsQueues"]["Principal"]["Service"] == [
        "events.amazonaws.com"
    ]
    permission = s.named("tick-invoke")
    assert (permission.inputs["principal"], permission.inputs["sourceArn"]) == (
        "events.amazonaws.com",
        out(rule)["arn"],
    )
    (alarm,) = s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["dimensions"] == {"QueueName": out(dlq)["name"]}
    assert alarm.inputs["alarmActions"] == [ALARM_TOPIC]
    role = statements(s.named("tick-permissions"))
    assert role["SQSSendDeadLetter"]["Resource"] == [out(dlq)["arn"]]


def test_a_schedule_expression_must_be_rate_or_cron(code: str) -> None:
    with pytest.raises(
        ValueError, match=r"schedule_expression='every 5 minutes'; allowed: 'rate\(...\)' or 'cron\(...\)'"
    ):
        ScheduledFunction(
            "tick",
            ScheduledFunctionArgs(
                code=code,
                handler="app.handler",
                schedule_expression="every 5 minutes",
                alarm_topic_arn=ALARM_TOPIC,
            ),
        )


def test_every_taggable_child_carries_the_component_tag(synth: SynthFn, code: str) -> None:
    s = consumer(synth, code, tags={"team": "payments"})
    for resource in s.cloud_resources:
        tags = resource.inputs.get("tags")
        if tags is not None:
            component = s.component_of(resource)
            assert component is not None and tags["component"] == component.name, resource.name
    assert s.named("worker-function").inputs["tags"]["team"] == "payments"


def test_archives_are_accepted_as_code(synth: SynthFn, code: str) -> None:
    archive = pulumi.AssetArchive({"app.py": pulumi.StringAsset("def handler(e, c):\n    return None\n")})
    s = synth(
        program=lambda: Function(
            "inline", FunctionArgs(code=archive, handler="app.handler", log_kms_key_arn=SHARED_KEY)
        )
    )
    assert "code" in s.named("inline-function").inputs
