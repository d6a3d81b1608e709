"""Hand-made resources shaped like the harness records them (pulumi_aws camelCase inputs + state)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from policies.engine import Finding, evaluate, failures
from policies.rules import rules_by_id
from policies.view import ResourceView

REGION = "ap-northeast-2"
ACCOUNT = "123456789012"
CMK_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-cmk"


def view(type_token: str, name: str, inputs: dict[str, Any] | None = None, /, **state: Any) -> ResourceView:
    """A resource with these inputs; state defaults to a name, id and ARN derived from `name`."""
    service = type_token.split(":")[1].split("/")[0]
    computed = {"name": name, "id": f"{name}-id", "arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"}
    computed.update(state)
    urn = f"urn:pulumi:test::crowdfunding::{type_token}::{name}"
    return ResourceView(type_token, name, urn, dict(inputs or {}), computed)


def arn(service: str, name: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"


def queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def queue(name: str, /, **inputs: Any) -> ResourceView:
    """An SQS queue whose state carries its ARN and URL (id = URL, as AWS has it)."""
    url = queue_url(name)
    return view("aws:sqs/queue:Queue", name, inputs, url=url, id=url, arn=arn("sqs", name))


def tls_deny(service: str, resource: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": f"{service}:*",
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def dlq_alarm(name: str, queue_name: str, actions: Sequence[str] = (arn("sns", "ops"),)) -> ResourceView:
    return view(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        name,
        {
            "namespace": "AWS/SQS",
            "metricName": "ApproximateNumberOfMessagesVisible",
            "dimensions": {"QueueName": queue_name},
            "comparisonOperator": "GreaterThanThreshold",
            "threshold": 0,
            "alarmActions": list(actions),
        },
    )


def secure_queue_with_dlq(name: str) -> list[ResourceView]:
    """What awsblocks.messaging.queue.Queue should produce: queue, DLQ, TLS-only policies, DLQ alarm."""
    dlq_name = f"{name}-dlq"
    resources = [
        queue(
            name,
            kmsMasterKeyId=CMK_ARN,
            visibilityTimeoutSeconds=180,
            redrivePolicy=json.dumps({"deadLetterTargetArn": arn("sqs", dlq_name), "maxReceiveCount": 5}),
        ),
        queue(dlq_name, kmsMasterKeyId=CMK_ARN, messageRetentionSeconds=1_209_600),
    ]
    for queue_name in (name, dlq_name):
        resources.append(
            view(
                "aws:sqs/queuePolicy:QueuePolicy",
                f"{queue_name}-policy",
                {
                    "queueUrl": queue_url(queue_name),
                    "policy": document(tls_deny("sqs", arn("sqs", queue_name))),
                },
            )
        )
    resources.append(dlq_alarm(f"{dlq_name}-depth", dlq_name))
    return resources


def function(name: str, /, **inputs: Any) -> ResourceView:
    settings = {"runtime": "python3.12", "timeout": 30, "memorySize": 256, "role": arn("iam", f"{name}-role")}
    settings.update(inputs)
    return view("aws:lambda/function:Function", name, settings, arn=arn("lambda", f"function:{name}"))


def log_group(name: str, /, **inputs: Any) -> ResourceView:
    settings = {"name": name, "retentionInDays": 14, "kmsKeyId": CMK_ARN}
    settings.update(inputs)
    return view("aws:cloudwatch/logGroup:LogGroup", name.strip("/").replace("/", "-"), settings, name=name)


def only(rule_id: str, resources: Iterable[ResourceView]) -> dict[str, Finding]:
    """The findings of one rule, keyed by resource name."""
    found = evaluate(list(resources), rules=[rules_by_id()[rule_id]], waivers={})
    return {f.resource_name: f for f in found}


# --- breaking one resource of a real stack ---------------------------------------------------


def break_one(
    resources: Sequence[ResourceView], name: str, mutate: Callable[[dict[str, Any]], None]
) -> list[ResourceView]:
    """A copy of `resources` where the inputs (and state) of resource `name` went through `mutate`."""
    matches = [r for r in resources if r.name == name]
    if len(matches) != 1:
        raise LookupError(f"expected one resource named {name!r}, found {len(matches)}")
    broken: list[ResourceView] = []
    for resource in resources:
        if resource.name != name:
            broken.append(resource)
            continue
        inputs = copy.deepcopy(dict(resource.inputs))
        mutate(inputs)
        state = {**copy.deepcopy(dict(resource.state)), **inputs}
        for key in set(resource.inputs) - set(inputs):
            state.pop(key, None)
        broken.append(ResourceView(resource.type, resource.name, resource.urn, inputs, state))
    return broken


def assert_breaking_reports(
    resources: Sequence[ResourceView],
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    expected: set[tuple[str, str]],
    message_contains: str,
) -> list[Finding]:
    """Break resource `name` and assert `evaluate` reports exactly the `expected` new failures.

    `expected` holds (rule id, resource name) pairs (a cross-resource rule may fail on another
    resource than the broken one); every new failure's message must name its resource and say
    how to fix it, and one of them must contain `message_contains`.
    """
    before = {(f.rule, f.resource_name) for f in failures(evaluate(resources, waivers={}))}
    after = failures(evaluate(break_one(resources, name, mutate), waivers={}))
    new = [f for f in after if (f.rule, f.resource_name) not in before]
    assert {(f.rule, f.resource_name) for f in new} == expected, [f.message for f in new]
    for finding in new:
        assert f" {finding.resource_name}: " in finding.message and "fix:" in finding.message
    assert any(message_contains in f.message for f in new), [f.message for f in new]
    return new


def handler(event: Any, context: Any) -> None:
    """A stand-in Lambda handler: the messaging example packages this folder as its code."""
