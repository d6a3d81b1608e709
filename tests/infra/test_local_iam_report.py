"""The IAM report: each role's grants against what it used, unused grants flagged."""

from __future__ import annotations

import json
from typing import Any

from toolchain.embedded.iam_report import build, render, role_report, short_arn, users_of_roles

TABLE = "arn:aws:dynamodb:ap-northeast-2:123456789012:table/ledger"
LOGS = "arn:aws:logs:ap-northeast-2:123456789012:log-group:/aws/lambda/recorder"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


POLICY = policy(
    {
        "Sid": "Ledger",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": TABLE,
    },
    {
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [LOGS, f"{LOGS}:*"],
    },
)


def test_unused_grants_are_flagged_used_ones_counted_denials_listed() -> None:
    report = role_report(
        "recorder-role",
        [POLICY],
        used={"dynamodb:PutItem": {TABLE: 12}},
        denied={"dynamodb:DeleteItem": {TABLE: 2}},
        used_by=["function recorder"],
    )
    by_action = {(g.action, g.resource): g for g in report.grants}
    assert by_action[("dynamodb:PutItem", TABLE)].uses == 12
    assert by_action[("dynamodb:UpdateItem", TABLE)].unused
    assert [(g.action, g.resource) for g in report.unused] == [("dynamodb:UpdateItem", TABLE)]
    # Log delivery is the service's use of the role, never flagged.
    assert all(g.service and not g.unused for g in report.grants if g.action.startswith("logs:"))
    assert report.denied == [("dynamodb:DeleteItem", TABLE, 2)]
    text = render([report], ["pipeline-role"])
    assert "UNUSED" in text and "dynamodb:UpdateItem" in text and "table/ledger" in text
    assert "DENIED" in text and "1 unused grant(s) in recorder-role; 2 call(s) denied" in text
    assert "pipeline-role" in text


def test_wildcard_grants_match_the_resources_used() -> None:
    wildcard = policy({"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{TABLE}/index/*"})
    report = role_report("r", [wildcard], used={"dynamodb:query": {f"{TABLE}/index/byFunding": 3}}, denied={})
    assert report.grants[0].uses == 3 and not report.unused


def test_a_policy_that_cannot_be_listed_is_said_so() -> None:
    odd = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    report = role_report("r", [odd], used={}, denied={})
    assert "NotAction" in report.problem
    assert "grants not listed" in render([report])


def test_roles_are_attributed_to_what_runs_as_them_from_the_state_file() -> None:
    deployment = {
        "roles": {
            "arn:aws:iam::123456789012:role/recorder-role": {"name": "recorder-role"},
            "arn:aws:iam::123456789012:role/api-task-role": {"name": "api-task-role"},
            "arn:aws:iam::123456789012:role/api-execution-role": {"name": "api-execution-role"},
        },
        "functions": {
            "recorder": {"name": "recorder", "role": "arn:aws:iam::123456789012:role/recorder-role"}
        },
        "mappings": [{"function": "recorder"}],
        "containers": [{"family": "shop-api", "taskRoleArn": "arn:aws:iam::123456789012:role/api-task-role"}],
    }
    users = users_of_roles(deployment)
    assert users == {
        "recorder-role": ["function recorder", "its event source mapping"],
        "api-task-role": ["ECS task shop-api (the API)"],
    }
    iam = {
        "roles": {
            "recorder-role": {"policies": [POLICY], "used": {}, "denied": {}},
            "api-task-role": {"policies": [], "used": {}, "denied": {}},
            "api-execution-role": {"policies": [POLICY], "used": {}, "denied": {}},
        }
    }
    reports, others = build(iam, deployment)
    assert [r.role for r in reports] == ["api-task-role", "recorder-role"]
    assert others == ["api-execution-role"]


def test_short_arns_keep_the_part_that_differs() -> None:
    assert short_arn(TABLE) == "table/ledger"
    assert short_arn("*") == "*"
