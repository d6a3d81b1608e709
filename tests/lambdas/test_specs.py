"""A spec refuses, when it is built, what AWS would refuse or what would misbehave once deployed.

Each message names the function, the value and the file to fix, so a bad edit to
lambdas/specs/<function>.py stops at import (of the handler, or of the stack), not mid-deployment.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lambdas.shared import contract
from lambdas.specs import catalog
from lambdas.specs.model import (
    DeadLetters,
    FunctionSpec,
    InvokedOnly,
    Schedule,
    Sizing,
    SpecError,
    TopicQueue,
)

PAYMENTS = contract.PAYMENTS_TABLE.env_var


def spec(**changes: Any) -> FunctionSpec:
    """A valid queue consumer `orders_worker`, with `changes` applied."""
    values: dict[str, Any] = {
        "name": "orders_worker",
        "trigger": TopicQueue("orders", (contract.EventType.PAYMENT_APPROVED,)),
        "environment": (PAYMENTS,),
        "access": {PAYMENTS: ("dynamodb:GetItem",)},
        "sizing": Sizing(timeout_seconds=30),
    }
    values.update(changes)
    return FunctionSpec(**values)


def test_a_valid_spec_is_frozen_and_its_access_read_only() -> None:
    built = spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        built.access[PAYMENTS] = ("dynamodb:DeleteItem",)  # type: ignore[index]
    assert built.path == "lambdas/specs/orders_worker.py"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"sizing": Sizing(timeout_seconds=30, maximum_concurrency=10, reserved_concurrency=5)},
            r"function orders_worker: sizing.reserved_concurrency=5 is below its maximum_concurrency=10 "
            r".*fix: reserve at least 10 in lambdas/specs/orders_worker.py",
        ),
        (
            {"sizing": Sizing(timeout_seconds=30, batch_size=99)},
            r"sizing.batch_size=99 needs a batching window .*fix: batching_window_seconds of at least 1",
        ),
        (
            {"sizing": Sizing(timeout_seconds=901)},
            r"sizing.timeout_seconds=901; fix: 1 to 900 in lambdas/specs/orders_worker.py",
        ),
        (
            {"sizing": Sizing(timeout_seconds=30, memory_mb=64)},
            r"sizing.memory_mb=64; fix: 128 to 10240",
        ),
        (
            {"sizing": Sizing(timeout_seconds=30, maximum_concurrency=1)},
            r"sizing.maximum_concurrency=1; fix: 2 to 1000, or None for no cap",
        ),
        (
            {
                "trigger": Schedule("rate(5 minutes)"),
                "sizing": Sizing(timeout_seconds=30, maximum_concurrency=5),
            },
            r"sizing.maximum_concurrency=5 applies only to a queue consumer, and orders_worker is "
            r"triggered by Schedule; fix: remove it",
        ),
        (
            {"trigger": InvokedOnly(), "sizing": Sizing(timeout_seconds=30, reserved_concurrency=4)},
            r"reserved_concurrency=4 on a function only others invoke: its reservation is the sum of its "
            r"callers'",
        ),
        (
            {"trigger": Schedule("every 5 minutes")},
            r"Schedule\('every 5 minutes'\) is not an EventBridge expression; fix: 'rate\(5 minutes\)'",
        ),
        (
            {"trigger": TopicQueue("orders", ())},
            r"TopicQueue\('orders'\) consumes no events",
        ),
        (
            {"access": {PAYMENTS: "dynamodb:GetItem"}},
            r"function orders_worker: lambdas/specs/orders_worker.py access\['PAYMENTS_TABLE'\] is "
            r"'dynamodb:GetItem'; fix: a tuple of IAM action names such as \('dynamodb:GetItem',\) "
            r"\(a one-element tuple needs its trailing comma\)",
        ),
        (
            {"environment": PAYMENTS},
            r"function orders_worker: environment='PAYMENTS_TABLE'; fix: a tuple of variable names",
        ),
        (
            {"optional_environment": (PAYMENTS,)},
            r"PAYMENTS_TABLE is both required and optional; fix: keep it in one of environment or "
            r"optional_environment",
        ),
        (
            {"name": "orders-worker"},
            r"function name 'orders-worker' is not a module name; fix: lower_snake_case",
        ),
    ],
)
def test_each_invalid_value_is_refused_naming_the_function_the_value_and_the_fix(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        spec(**changes)


def test_specs_that_disagree_with_each_other_are_refused() -> None:
    worker = spec()
    retry = spec(name="orders_retry", trigger=DeadLetters("order"), sizing=Sizing(timeout_seconds=30))
    twin = spec(name="orders_twin")
    problems = catalog.catalog_problems((worker, retry, twin, worker))
    assert problems == [
        "function orders_worker has more than one spec; fix: keep one in lambdas/specs/orders_worker.py",
        "function orders_twin: queue 'orders' is already consumed by orders_worker; fix: give "
        "lambdas/specs/orders_twin.py its own queue name",
        "function orders_worker: queue 'orders' is already consumed by orders_worker; fix: give "
        "lambdas/specs/orders_worker.py its own queue name",
        "function orders_retry: DeadLetters('order') names a queue no function consumes, so it has no "
        "dead-letter queue; fix: in lambdas/specs/orders_retry.py one of: orders",
    ]
    assert catalog.catalog_problems(catalog.SPECS) == []


def test_an_unknown_event_is_refused_naming_the_allowed_ones() -> None:
    (problem,) = catalog.catalog_problems((spec(trigger=TopicQueue("orders", ("order.placed",))),))
    assert problem.startswith(
        "function orders_worker: TopicQueue('orders') names unknown event(s) 'order.placed'; fix: use "
        "contract.EventType members in lambdas/specs/orders_worker.py (allowed: funding.failed, "
    )


def test_subscriptions_follow_the_consumed_events() -> None:
    notifier = catalog.spec_of("notifier").trigger
    assert isinstance(notifier, TopicQueue)
    assert catalog.subscribed_topics(notifier) == (contract.Topic.FUNDING_TARGET, contract.Topic.PAYMENTS)
    assert catalog.events_on(notifier, contract.Topic.FUNDING_TARGET) == (
        contract.EventType.FUNDING_GOAL_REACHED,
        contract.EventType.FUNDING_FAILED,
    )
    assert catalog.consumers_of(contract.EventType.PAYMENT_FAILED) == ("ledger_recorder", "notifier")
