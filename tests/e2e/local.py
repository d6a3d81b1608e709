"""What every end-to-end test does with a running local system: start it, read its tables, wait.

Every system runs on free ports of 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from lambdas.shared.contract import PAYMENTS_TABLE, TERMINAL_PAYMENT_STATES
from local import PRODUCT
from local.demo import table_name
from toolchain.embedded.emulator import emulator_resource
from toolchain.embedded.runtime import free_port
from toolchain.embedded.system import LocalSystem, SystemOptions

TERMINAL = {str(s) for s in TERMINAL_PAYMENT_STATES}


def start_system(tmp_path: Path, **options: Any) -> LocalSystem:
    """A started system (time compressed 120x unless `time_scale` is given); the caller stops it."""
    system = LocalSystem(
        SystemOptions(
            emulator_port=free_port(),
            api_port=free_port(),
            time_scale=options.pop("time_scale", 120.0),
            workdir=tmp_path / "run",
            state_file=None,
            product=PRODUCT,
            **options,
        )
    )
    system.start()
    return system


def scan(system: LocalSystem, logical: str) -> list[dict[str, Any]]:
    """Every item of one of the program's tables, read consistently with the runner's credentials."""
    table = emulator_resource("dynamodb", system.emulator_url, system.region).Table(
        table_name(system.state(), logical)
    )
    items: list[dict[str, Any]] = []
    start_key: dict[str, Any] | None = None
    while True:
        page = table.scan(ConsistentRead=True, **({"ExclusiveStartKey": start_key} if start_key else {}))
        items.extend(page["Items"])
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return items


def wait_for_terminal(system: LocalSystem, payment_ids: set[str], timeout: float) -> dict[str, str]:
    """Each payment's terminal state, once all have one; fails naming what is left at the deadline."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {
            str(p["paymentId"]): str(p["state"])
            for p in scan(system, PAYMENTS_TABLE.logical_name)
            if p["paymentId"] in payment_ids
        }
        if len(states) == len(payment_ids) and all(s in TERMINAL for s in states.values()):
            return states
        time.sleep(1)
    left = Counter(states.get(pid, "MISSING") for pid in payment_ids if states.get(pid) not in TERMINAL)
    raise AssertionError(f"not terminal after {timeout:.0f}s: {dict(left)}; stats {system.stats()}")
