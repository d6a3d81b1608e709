"""The PolicyPack: built from the same rules, fed engine-shaped args, it reports what `evaluate` reports."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies.adapters import views_of_synthesis
from policies.pack import PACK_NAME, build_policies
from policies.rules import RULES
from policies.view import ResourceView
from tests.conftest import SynthFn
from tests.policies.builders import CMK_ARN, function, queue, secure_queue_with_dlq

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"
Violation = tuple[str, str | None]


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource_args(resource: ResourceView, props: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """What the engine passes a resource policy: the inputs behind its unknown-checking proxy."""
    inputs = dict(resource.inputs) if props is None else props
    return ResourceValidationArgs(
        resource.type, unknown_checking_proxy(inputs), resource.urn, resource.name, _opts(), None
    )


def stack_args(
    resources: list[ResourceView], overrides: dict[str, dict[str, Any]] | None = None
) -> StackValidationArgs:
    """What the engine passes a stack policy: every resource with its outputs as props."""
    engine_resources = []
    for resource in resources:
        props = {**resource.state, **resource.inputs, **(overrides or {}).get(resource.name, {})}
        engine_resources.append(
            PolicyResource(
                resource.type,
                unknown_checking_proxy(props),
                resource.urn,
                resource.name,
                _opts(),
                None,
                None,
                [],
                {},
            )
        )
    return StackValidationArgs(engine_resources)


def policy(name: str, **kwargs: Any) -> Any:
    return next(p for p in build_policies(**kwargs) if p.name == name)


def run_resource_policy(name: str, args: ResourceValidationArgs, **kwargs: Any) -> list[Violation]:
    violations: list[Violation] = []
    policy(name, **kwargs).validate(args, lambda message, urn=None: violations.append((message, urn)))
    return violations


def run_stack_policy(name: str, args: StackValidationArgs, **kwargs: Any) -> list[Violation]:
    violations: list[Violation] = []
    policy(name, **kwargs).validate(args, lambda message, urn=None: violations.append((message, urn)))
    return violations


def test_one_mandatory_policy_per_rule_of_the_right_kind() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [r.id for r in RULES]
    for rule, built in zip(RULES, policies, strict=True):
        expected = ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy
        assert isinstance(built, expected)
        assert built.enforcement_level == EnforcementLevel.MANDATORY
        assert built.description == rule.description


def test_entry_point_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.update(kwargs))
    runpy.run_path(str(POLICIES_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME
    assert built["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [r.id for r in RULES]


def test_policy_project_file_runs_python_from_the_repo_venv() -> None:
    project = yaml.safe_load((POLICIES_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    virtualenv = project["runtime"]["options"]["virtualenv"]
    assert (POLICIES_DIR / virtualenv).resolve() == POLICIES_DIR.parent / ".venv"
    assert project["version"]


def test_resource_policy_reports_a_bad_resource_on_its_urn() -> None:
    plain = queue("plain")
    violations = run_resource_policy("sqs-cmk-encryption", resource_args(plain))
    assert len(violations) == 1
    message, urn = violations[0]
    assert message.startswith("aws:sqs:Queue plain: not encrypted with a customer-managed KMS key")
    assert urn == plain.urn
    assert run_resource_policy("sqs-cmk-encryption", resource_args(queue("ok", kmsMasterKeyId=CMK_ARN))) == []


def test_resource_policy_ignores_other_types() -> None:
    assert run_resource_policy("sqs-cmk-encryption", resource_args(function("f"))) == []


def test_resource_policy_honours_waivers() -> None:
    waivers = {("sqs-cmk-encryption", "plain"): "a test fixture the waiver must silence"}
    assert run_resource_policy("sqs-cmk-encryption", resource_args(queue("plain")), waivers=waivers) == []


def test_unknown_value_a_rule_needs_becomes_the_engines_unknown_error() -> None:
    mapping = ResourceView(
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "m",
        "urn:m",
        {"eventSourceArn": UNKNOWN_STRING_VALUE, "functionName": "f", "functionResponseTypes": []},
    )
    with pytest.raises(UnknownValueError) as raised:
        run_resource_policy("sqs-event-source-batch-failures", resource_args(mapping))
    assert raised.value.message == (
        "string value at .aws:lambda:EventSourceMapping m.eventSourceArn can't be known during preview"
    )


def test_unknown_value_a_rule_does_not_need_is_harmless() -> None:
    key = ResourceView(
        "aws:kms/key:Key", "k", "urn:k", {"description": UNKNOWN_STRING_VALUE, "enableKeyRotation": True}
    )
    assert run_resource_policy("kms-key-rotation", resource_args(key)) == []


def test_stack_policy_sees_other_resources() -> None:
    pair = secure_queue_with_dlq("work")
    assert run_stack_policy("sqs-dead-letter-queue-alarm", stack_args(pair)) == []
    without_alarm = [r for r in pair if r.type != "aws:cloudwatch/metricAlarm:MetricAlarm"]
    violations = run_stack_policy("sqs-dead-letter-queue-alarm", stack_args(without_alarm))
    dlq = next(r for r in pair if r.name == "work-dlq")
    assert [urn for _, urn in violations] == [dlq.urn]
    assert "no alarm on ApproximateNumberOfMessagesVisible" in violations[0][0]


def test_stack_policy_reports_what_it_can_then_the_unknown() -> None:
    pair = secure_queue_with_dlq("work")
    lonely = queue("lonely", kmsMasterKeyId=CMK_ARN)
    unknown_policy = {"other": {"redrivePolicy": UNKNOWN_STRING_VALUE}}
    violations: list[Violation] = []
    args = stack_args([*pair, lonely, queue("other")], overrides=unknown_policy)
    with pytest.raises(UnknownValueError):
        policy("sqs-dead-letter-queue").validate(
            args, lambda message, urn=None: violations.append((message, urn))
        )
    assert [urn for _, urn in violations] == [lonely.urn]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pack_passes_a_committed_stack_and_catches_a_broken_one(synth: SynthFn, stack: str) -> None:
    views = views_of_synthesis(synth(stack))
    for built in build_policies():
        if isinstance(built, StackValidationPolicy):
            assert run_stack_policy(built.name, stack_args(views)) == [], built.name
        else:
            for view in views:
                assert run_resource_policy(built.name, resource_args(view)) == [], (built.name, view.name)
    lonely = queue("lonely", kmsMasterKeyId=CMK_ARN, policy="")
    violations = run_stack_policy("sqs-dead-letter-queue", stack_args([*views, lonely]))
    assert [urn for _, urn in violations] == [lonely.urn]
