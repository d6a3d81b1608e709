"""Seeded faults: AWS call failures, crash plans, and the worker's crash switch."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from toolchain.embedded.faults import (
    CRASH_AT_RETURN,
    CRASH_WRITE_POINTS,
    AwsFaults,
    CrashPlanner,
    check_rate,
    crash_point_label,
    is_mutating,
)
from toolchain.embedded.worker import CrashSwitch


def test_no_rate_no_faults() -> None:
    faults = AwsFaults(0.0, 1)
    assert all(faults.draw("dynamodb", "json") is None for _ in range(1000))
    assert faults.total == 0


def test_faults_are_seeded_reproducible_and_counted() -> None:
    def sequence(seed: int) -> list[str | None]:
        faults = AwsFaults(0.3, seed)
        drawn = [faults.draw("dynamodb", "json") for _ in range(300)]
        return [None if d is None else d.code for d in drawn]

    first = sequence(7)
    assert first == sequence(7)
    assert first != sequence(8)
    injected = [code for code in first if code]
    assert 60 <= len(injected) <= 120  # about 30%
    assert set(injected) == {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailable",
    }
    faults = AwsFaults(1.0, 0)
    faults.draw("sqs", "json")
    faults.draw("sns", "query")
    assert faults.total == 2 and sum(faults.injected.values()) == 2
    assert all(key.split(":")[0] in ("sqs", "sns") for key in faults.injected)


def test_cbor_calls_are_never_faulted_and_configure_restarts_the_sequence() -> None:
    faults = AwsFaults(1.0, 3)
    assert faults.draw("cloudwatch", "cbor") is None
    a = [faults.draw("sns", "query") for _ in range(5)]
    faults.configure(1.0, 3)
    assert [faults.draw("sns", "query") for _ in range(5)] == a


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_rates_outside_zero_to_one_are_refused_with_the_knob_named(value: float) -> None:
    with pytest.raises(ValueError, match="AWS_FAULT_RATE"):
        check_rate("AWS_FAULT_RATE", value)


def test_crash_plans_are_per_function_seeded_and_cover_every_point() -> None:
    planner = CrashPlanner(0.5, 11)
    plans = [planner.plan("processor") for _ in range(400)]
    again = CrashPlanner(0.5, 11)
    assert plans == [again.plan("processor") for _ in range(400)]
    # Another function's plans do not shift this one's.
    mixed = CrashPlanner(0.5, 11)
    interleaved = []
    for _ in range(400):
        mixed.plan("ledger")
        interleaved.append(mixed.plan("processor"))
    assert interleaved == plans
    points = Counter(p for p in plans if p is not None)
    assert set(points) == {*map(str, range(CRASH_WRITE_POINTS + 1)), CRASH_AT_RETURN}
    assert 150 <= sum(points.values()) <= 250
    assert CrashPlanner(0.0, 1).plan("x") is None


def test_crash_point_labels() -> None:
    assert crash_point_label("0") == "before any AWS call"
    assert crash_point_label("2") == "after its 2nd write completed"
    assert crash_point_label(CRASH_AT_RETURN).startswith("after the handler returned")


def test_writes_are_what_changes_state() -> None:
    assert all(is_mutating(op) for op in ("PutItem", "UpdateItem", "TransactWriteItems", "Publish", "Invoke"))
    assert not any(is_mutating(op) for op in ("GetItem", "Query", "Scan", "BatchGetItem", "ReceiveMessage"))


class Died(Exception):
    pass


def switch_that_records() -> tuple[CrashSwitch, list[str]]:
    switch = CrashSwitch()
    deaths: list[str] = []

    def die() -> None:
        deaths.append(f"{switch.point}:{switch.writes}")
        raise Died

    switch.die = die  # type: ignore[method-assign]
    return switch, deaths


def call(switch: CrashSwitch, operation: str, status: int = 200) -> None:
    model: Any = SimpleNamespace(name=operation, service_model=SimpleNamespace(service_name="dynamodb"))
    switch.after_call(http_response=SimpleNamespace(status_code=status), model=model)


def test_the_switch_kills_when_the_planned_write_completes() -> None:
    switch, deaths = switch_that_records()
    switch.arm("2")
    call(switch, "GetItem")
    call(switch, "PutItem")
    call(switch, "UpdateItem", status=400)  # a failed write is not a completed write
    with pytest.raises(Died):
        call(switch, "UpdateItem")
    assert deaths == ["2:2"] and switch.last_write == "dynamodb.UpdateItem"


def test_the_switch_kills_before_the_handler_or_at_return() -> None:
    switch, deaths = switch_that_records()
    with pytest.raises(Died):
        switch.arm("0")
    switch.arm("3")
    call(switch, "PutItem")
    with pytest.raises(Died):
        switch.before_reply()  # fewer writes than planned: it dies after the handler returned
    assert deaths == ["0:0", f"{CRASH_AT_RETURN}:1"]
    switch.arm(None)
    call(switch, "PutItem")
    switch.before_reply()
    assert len(deaths) == 2
