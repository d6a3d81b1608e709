"""Every rule over every resource of every committed stack, and a broken resource shows up."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from policies.adapters import evaluate_synthesis, views_of_synthesis
from policies.engine import evaluate, failures, summary, unused_waivers, waiver_for
from policies.rules import RULES, rules_by_id
from policies.view import ResourceView
from policies.waivers import WAIVERS
from tests.conftest import SynthFn
from tests.policies.builders import assert_breaking_reports
from toolchain.project import stack_names

COVERED_TYPES = {t for r in RULES for t in r.types}


@pytest.mark.parametrize("stack", stack_names())
def test_every_rule_passes_on_every_resource(synth: SynthFn, stack: str) -> None:
    findings = evaluate_synthesis(synth(stack))
    assert [f.message for f in failures(findings)] == []
    assert summary(findings)["passed"] > 0


@pytest.mark.parametrize("stack", stack_names())
def test_every_covered_resource_was_checked(synth: SynthFn, stack: str) -> None:
    s = synth(stack)
    checked = {f.urn for f in evaluate_synthesis(s)}
    always = {t for r in RULES if r.applies is None for t in r.types}
    assert [r.name for r in s.cloud_resources if r.type in always and r.urn not in checked] == []


def test_every_waiver_names_a_rule_and_gives_a_reason() -> None:
    for (rule_id, pattern), reason in WAIVERS.items():
        assert rule_id in rules_by_id(), f"waiver for unknown rule {rule_id}"
        assert pattern and len(reason.split()) >= 5, f"waiver {rule_id}/{pattern} needs a real reason"


def test_no_waiver_is_stale(synth: SynthFn) -> None:
    """Every waiver is used by a committed stack, or by one with its delivery pipeline turned on
    (off as committed: it needs the user's own repository connection)."""
    from tests.infra.test_pipeline import PIPELINE_ON

    syntheses = [synth(stack) for stack in stack_names()]
    syntheses += [synth(stack, overrides=PIPELINE_ON) for stack in ("dev", "prod")]
    findings = [f for s in syntheses for f in evaluate_synthesis(s)]
    assert unused_waivers(findings) == []


# --- a deliberately broken resource must show ------------------------------------------------

MESSAGING_EXAMPLE = "messaging-example"
SOURCES = [*stack_names(), MESSAGING_EXAMPLE]


def _messaging_example() -> None:
    """The pipeline of awsblocks.messaging's docstrings, as a team would build it."""
    from awsblocks.data.table import Table, TableArgs
    from awsblocks.functions.code_signing import CodeSigning, CodeSigningArgs
    from awsblocks.functions.queue_function import QueueFunction, QueueFunctionArgs
    from awsblocks.messaging.queue import Queue, QueueArgs
    from awsblocks.messaging.subscription import TopicFeed
    from awsblocks.messaging.topic import Topic, TopicArgs
    from awsblocks.security import iam

    package = Path(tempfile.mkdtemp(prefix="shipper-")) / "shipper.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(Path(__file__).parent / "builders.py", "builders.py")
    signing = CodeSigning("signing", CodeSigningArgs())
    alerts = Topic("alerts", TopicArgs(publisher_services=["cloudwatch"]))
    orders = Topic("orders", TopicArgs())
    shipping = Queue(
        "shipping",
        QueueArgs(
            alarm_topic_arn=alerts.arn,
            visibility_timeout_seconds=180,
            subscriptions=[TopicFeed(orders.arn, {"type": ["order.paid"]})],
        ),
    )
    table = Table("shipments", TableArgs(partition_key="orderId"))
    QueueFunction(
        "shipper",
        QueueFunctionArgs(
            queue=shipping,
            code=str(package),
            handler="builders.handler",
            code_signing=signing.ref,
            timeout_seconds=30,
            grants=[iam.dynamodb_read_write(table.arn, table.index_arns), iam.kms_use([table.kms_key_arn])],
        ),
    )


def _web_example() -> None:
    """components/awsblocks/web/web_service.py's WebService with a prebuilt image (nothing is built)."""
    from awsblocks.web.web_service import WebService, WebServiceArgs

    WebService(
        "web",
        WebServiceArgs(
            vpc_id="vpc-0123",
            public_subnet_ids=["subnet-pub-a", "subnet-pub-b"],
            private_subnet_ids=["subnet-priv-a", "subnet-priv-b"],
            image_uri="123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web:commit-abc123",
        ),
    )


def test_the_web_service_passes_every_rule(synth: SynthFn) -> None:
    findings = evaluate(views_of_synthesis(synth(program=_web_example)), waivers={})
    # Checks the project decided not to adopt (each waived with its reason) may fail here too.
    decided = {rule_id for rule_id, _pattern in WAIVERS}
    assert [f.message for f in failures(findings) if f.rule not in decided] == []
    rules_seen = {f.rule for f in findings}
    assert {
        "ec2-no-open-ingress",
        "alb-drop-invalid-headers",
        "s3-tls-only",
        "ecr-immutable-tags",
    } <= rules_seen


def test_opening_ssh_on_the_load_balancers_group_is_reported(synth: SynthFn) -> None:
    views = views_of_synthesis(synth(program=_web_example))
    rule = _first(
        views,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        lambda v: v.inputs.get("cidrIpv4") == "0.0.0.0/0",
    )
    assert rule is not None
    assert_breaking_reports(
        views,
        rule.name,
        lambda inputs: inputs.update(fromPort=22.0, toPort=22.0),
        {("ec2-no-open-ingress", rule.name)},
        "allows tcp port 22 from 0.0.0.0/0; fix: open only tcp 80 and 443",
    )


def test_opening_the_service_group_to_the_internet_is_reported(synth: SynthFn) -> None:
    views = views_of_synthesis(synth(program=_web_example))
    balancer = _first(views, "aws:lb/loadBalancer:LoadBalancer")
    assert balancer is not None
    internal = _first(
        views,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        lambda v: v.inputs.get("securityGroupId") not in balancer.inputs["securityGroups"],
    )
    assert internal is not None
    assert_breaking_reports(
        views,
        internal.name,
        lambda inputs: inputs.update(cidrIpv4="0.0.0.0/0", referencedSecurityGroupId=None),
        {("ec2-no-open-ingress", internal.name)},
        "from 0.0.0.0/0; fix: restrict the source",
    )


def _views(synth: SynthFn, source: str) -> list[ResourceView]:
    if source == MESSAGING_EXAMPLE:
        return views_of_synthesis(synth(program=_messaging_example))
    return views_of_synthesis(synth(source))


def test_the_messaging_example_passes_every_rule(synth: SynthFn) -> None:
    findings = evaluate(_views(synth, MESSAGING_EXAMPLE), waivers={})
    decided = {rule_id for rule_id, _pattern in WAIVERS}
    assert [f.message for f in failures(findings) if f.rule not in decided] == []
    # Adopted by default in the components: tracing and an encrypted environment; signed code with
    # the signing component.
    assert {
        "lambda-tracing",
        "lambda-environment-cmk",
        "lambda-async-dlq",
        "lambda-code-signing",
        "lambda-code-signing-enforced",
    } <= {f.rule for f in findings if f.status == "passed"}
    rules_seen = {f.rule for f in findings}
    assert {"sqs-dead-letter-queue", "sqs-dead-letter-queue-alarm", "sqs-visibility-timeout"} <= rules_seen


def _first(views: list[ResourceView], type_token: str, where: Any = None) -> ResourceView | None:
    return next((v for v in views if v.type == type_token and (where is None or where(v))), None)


def test_breaking_the_platform_key_rotation_is_reported(synth: SynthFn) -> None:
    views = _views(synth, "dev")
    key = _first(views, "aws:kms/key:Key")
    assert key is not None
    assert_breaking_reports(
        views,
        key.name,
        lambda inputs: inputs.update(enableKeyRotation=False),
        {("kms-key-rotation", key.name)},
        "automatic rotation is off",
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_an_unsigned_function_or_a_warning_config_is_reported_now_that_signing_is_not_waived(
    synth: SynthFn, stack: str
) -> None:
    views = _views(synth, stack)
    function = _first(views, "aws:lambda/function:Function")
    config = _first(views, "aws:lambda/codeSigningConfig:CodeSigningConfig")
    assert function is not None and config is not None
    assert waiver_for("lambda-code-signing", function.name, urn=function.urn) is None
    assert_breaking_reports(
        views,
        function.name,
        lambda inputs: inputs.pop("codeSigningConfigArn"),
        {("lambda-code-signing", function.name)},
        "no code_signing_config_arn",
    )
    assert_breaking_reports(
        views,
        config.name,
        lambda inputs: inputs.update(policies={"untrustedArtifactOnDeployment": "Warn"}),
        {("lambda-code-signing-enforced", config.name)},
        "untrusted_artifact_on_deployment is 'Warn'",
    )


def test_removing_a_log_group_retention_is_reported(synth: SynthFn) -> None:
    views = _views(synth, "dev")
    group = _first(views, "aws:cloudwatch/logGroup:LogGroup")
    assert group is not None
    assert_breaking_reports(
        views,
        group.name,
        lambda inputs: inputs.pop("retentionInDays"),
        {("logs-retention", group.name)},
        "retention_in_days is not set",
    )


def test_widening_a_role_policy_is_reported(synth: SynthFn) -> None:
    views = _views(synth, "dev")
    policy = _first(views, "aws:iam/rolePolicy:RolePolicy")
    assert policy is not None

    def widen(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        document["Statement"][0]["Action"] = "logs:*"
        inputs["policy"] = json.dumps(document)

    assert_breaking_reports(
        views, policy.name, widen, {("iam-least-privilege", policy.name)}, "allows logs:*"
    )


def _with_redrive(view: ResourceView) -> bool:
    return bool(view.inputs.get("redrivePolicy"))


@pytest.mark.parametrize("stack", SOURCES)
def test_removing_a_queues_redrive_policy_is_reported(synth: SynthFn, stack: str) -> None:
    views = _views(synth, stack)
    source = _first(views, "aws:sqs/queue:Queue", _with_redrive)
    if source is None:
        pytest.skip(f"stack {stack} declares no queue with a redrive policy yet")
    dlq_arn = json.loads(source.inputs["redrivePolicy"])["deadLetterTargetArn"]
    dlq = next(v for v in views if v.type == "aws:sqs/queue:Queue" and dlq_arn in v.identities)
    # The DLQ served only this queue, so it is orphaned too: a queue without a DLQ of its own.
    expected = {("sqs-dead-letter-queue", source.name), ("sqs-dead-letter-queue", dlq.name)}
    assert_breaking_reports(
        views, source.name, lambda inputs: inputs.pop("redrivePolicy"), expected, "no redrive policy"
    )


@pytest.mark.parametrize("stack", SOURCES)
def test_dropping_batch_item_failures_is_reported(synth: SynthFn, stack: str) -> None:
    views = _views(synth, stack)
    mapping = _first(
        views,
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        lambda v: ":sqs:" in str(v.inputs.get("eventSourceArn")),
    )
    if mapping is None:
        pytest.skip(f"stack {stack} declares no SQS event source mapping yet")
    assert_breaking_reports(
        views,
        mapping.name,
        lambda inputs: inputs.pop("functionResponseTypes"),
        {("sqs-event-source-batch-failures", mapping.name)},
        "lacks ReportBatchItemFailures",
    )


@pytest.mark.parametrize("stack", SOURCES)
def test_silencing_a_dead_letter_alarm_is_reported(synth: SynthFn, stack: str) -> None:
    views = _views(synth, stack)
    alarm = _first(
        views,
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        lambda v: v.inputs.get("metricName") == "ApproximateNumberOfMessagesVisible",
    )
    if alarm is None:
        pytest.skip(f"stack {stack} declares no queue-depth alarm yet")
    queue_name = alarm.inputs["dimensions"]["QueueName"]
    queue = next(v for v in views if v.type == "aws:sqs/queue:Queue" and v.physical_name() == queue_name)
    assert_breaking_reports(
        views,
        alarm.name,
        lambda inputs: inputs.pop("alarmActions"),
        {("sqs-dead-letter-queue-alarm", queue.name)},
        f"alarm {alarm.name} watches it but has no enabled alarm_actions",
    )
