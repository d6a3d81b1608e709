"""Record the AWS actions each function makes and hold them against its spec's declared access.

Every function's spec (`lambdas/specs/<function>.py`) declares `access`: environment variable →
the exact IAM actions it calls on
the resource that variable names (`action@index` for a table index). The infrastructure grants
exactly that, and the local emulator enforces it, so a call outside the declaration fails there
with AccessDenied; here it fails the test that made it, with a message that says what to add.

Calls are attributed to the innermost `lambdas.<function>` module on the Python stack (so the
gateway running in-process under the processor is still the gateway), and mapped from botocore
operations to the IAM actions AWS authorizes: TransactWriteItems → each item's PutItem /
UpdateItem / DeleteItem / ConditionCheckItem, TransactGetItems → GetItem, PublishBatch →
sns:Publish, SendMessageBatch → sqs:SendMessage, Invoke → lambda:InvokeFunction.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from lambdas.specs import catalog
from lambdas.specs.model import FunctionSpec

Use = tuple[str, str]
"""(environment variable naming the resource, IAM action[@index])."""

_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_SINGLE = {
    ("sns", "Publish"): "sns:Publish",
    ("sns", "PublishBatch"): "sns:Publish",
    ("sqs", "SendMessage"): "sqs:SendMessage",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("ses", "SendEmail"): "ses:SendEmail",
    ("ses", "SendRawEmail"): "ses:SendRawEmail",
    ("cognito-idp", "ListUsers"): "cognito-idp:ListUsers",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}
_RESOURCE_PARAM = {
    "sns": "TopicArn",
    "sqs": "QueueUrl",
    "ses": "Source",
    "cognito-idp": "UserPoolId",
    "lambda": "FunctionName",
}


_THIS_FILE = str(Path(__file__))
_HARNESS_FILE = str(Path(__file__).with_name("conftest.py"))
_TESTS_DIR = str(Path(__file__).resolve().parents[1])


def current_function() -> str | None:
    """The function module (`lambdas.<name>`) making the current AWS call, if any.

    The innermost such module on the stack, unless test code sits in between: a test acting
    from inside a handler (the harness's Platform receiving and deleting messages to interleave
    batches, a test writing a row mid-run) is the test, not the function. The harness's other
    helpers are transparent (the fake gateway's invoke is the caller's own Invoke; the
    no-delay wrapper forwards payment_retry's own SendMessage).
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == _THIS_FILE:
            frame = frame.f_back
            continue
        if filename == _HARNESS_FILE:
            if type(frame.f_locals.get("self")).__name__ == "Platform":
                return None
            frame = frame.f_back
            continue
        if filename.startswith(_TESTS_DIR):
            return None
        module = frame.f_globals.get("__name__", "")
        if module.startswith("lambdas.") and module.count(".") == 1:
            name = module.split(".", 1)[1]
            if name in catalog.function_names():
                return name
        frame = frame.f_back
    return None


def running_spec(function: str) -> FunctionSpec:
    """The spec the handler module runs with (its `SPEC`; a test may replace it there)."""
    spec: FunctionSpec = importlib.import_module(f"lambdas.{function}").SPEC
    return spec


def declared_access(function: str) -> dict[str, tuple[str, ...]]:
    """The access its spec declares (environment variable → the IAM actions it calls)."""
    return dict(running_spec(function).access)


def _env_var_of(function: str, value: str) -> str:
    """The environment variable (among those the function declares) whose value names `value`."""
    for name in running_spec(function).declared_environment:
        configured = os.environ.get(name)
        if configured and configured == value:
            return name
    return f"<no declared variable names {value!r}>"


def uses_of(function: str, service: str, operation: str, params: dict[str, Any]) -> list[Use]:
    """The (variable, action) pairs IAM would check for one botocore call."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            uses: list[Use] = []
            for item in params.get("TransactItems", []):
                ((kind, body),) = item.items()
                action = "dynamodb:GetItem" if kind == "Get" else _TRANSACT_ACTIONS[kind]
                uses.append((_env_var_of(function, body["TableName"]), action))
            return uses
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [
                (_env_var_of(function, t), f"dynamodb:{operation}") for t in params.get("RequestItems", {})
            ]
        action = f"dynamodb:{operation}"
        if params.get("IndexName"):
            action += f"@{params['IndexName']}"
        return [(_env_var_of(function, params["TableName"]), action)]
    action = _SINGLE.get((service, operation), f"{service}:{operation}")
    resource = str(params.get(_RESOURCE_PARAM.get(service, ""), ""))
    return [(_env_var_of(function, resource), action)]


@dataclass
class AccessRecorder:
    """Collects, per function, every (variable, action) it used during a test."""

    used: dict[str, set[Use]] = field(default_factory=lambda: defaultdict(set))

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        function = current_function()
        if function is None:
            return  # the test itself (acting as the API or an operator)
        self.used[function].update(uses_of(function, service, operation, params))

    def on_botocore_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """botocore `before-parameter-build` hook."""
        self.record(str(model.service_model.service_name), str(model.name), params)

    def undeclared(self) -> dict[str, list[Use]]:
        """Per function, the uses its spec's access does not declare."""
        found: dict[str, list[Use]] = {}
        for function, uses in self.used.items():
            access = declared_access(function)
            missing = sorted((var, action) for var, action in uses if action not in access.get(var, ()))
            if missing:
                found[function] = missing
        return found


def describe(undeclared: dict[str, list[Use]]) -> str:
    """A failure message that says what each spec must add to its access."""
    lines = [
        "functions called AWS actions their spec's access does not declare (the emulator would deny them):"
    ]
    for function, uses in sorted(undeclared.items()):
        for var, action in uses:
            lines.append(f"  {running_spec(function).path}: access[{var!r}] lacks {action!r}")
    return "\n".join(lines)
