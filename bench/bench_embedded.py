"""Benchmark the embedded system end to end (127.0.0.1 only; bounded in count and time).

Prints:
- time from start to ready (what `make run` shows before its banner);
- end-to-end payments/s and p50/p95 latency from `POST /api/payments` to a terminal state,
  for a fixed run of N payments from C concurrent clients on a gateway that never fails (the
  happy path); a payment's terminal moment is the timestamp the system stored with its terminal
  state (capturedAt, declinedAt…), read back from the table, so polling adds no API load;
- AWS API calls per captured payment on that happy path, counted at the emulator
  (target ≤ 10), with the top calls by service:Action;
- the whole system's CPU per captured payment (every process of the run), which bounds the
  throughput on this machine's cores, and the emulator's share (its process's CPU, and the part
  moto spent by service:Action): the emulator is one process, so it also bounds it on one core.

Targets (issue 14): 500 payments at concurrency 16: ≥ 40 payments/s, p50 ≤ 3 s, ready ≤ 10 s.

Usage: .venv/bin/python bench/bench_embedded.py [--payments 500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from lambdas.shared.contract import PAYMENTS_TABLE, TERMINAL_PAYMENT_STATES
from local import PRODUCT
from local.demo import Api, campaign_body, table_name
from toolchain.embedded.emulator import CPU_PATH, emulator_client, local_call
from toolchain.embedded.runtime import free_port
from toolchain.embedded.system import LocalSystem, SystemOptions
from toolchain.embedded.token import issue_token

TERMINAL = {str(s) for s in TERMINAL_PAYMENT_STATES}
DEADLINE_SECONDS = 300
TERMINAL_TIMESTAMP = {
    "CAPTURED": "capturedAt",
    "DECLINED": "declinedAt",
    "FAILED": "failedAt",
    "CANCELLED": "cancelledAt",
    "REFUNDED": "capturedAt",
}
"""The attribute holding the moment a payment reached its (first) terminal state."""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU a process has used so far (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_cpu_seconds() -> dict[int, float]:
    """CPU used so far by this process and every process below it (the emulator, the API, each
    execution environment), by pid (Linux /proc; empty where unavailable)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in family]
        family.update(children)
        frontier.extend(children)
    return {pid: process_cpu_seconds(pid) for pid in family}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    if not 1 <= args.payments <= 1000:
        parser.error("--payments must be 1..1000")

    workdir = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    options = SystemOptions(
        emulator_port=free_port(),
        api_port=free_port(),
        workdir=workdir,
        state_file=None,
        product=PRODUCT,
        environment_overrides={
            "PG_TRANSIENT_FAILURE_RATE": "0",
            "PG_DECLINE_RATE": "0",
            "PG_LATENCY_MS": "0",
        },
        # The schedules at their deployed rates, as on AWS: `make run` compresses time 60x so
        # deadlines come soon, which would also run the sweeps 60x as often and charge their calls
        # to the payments of a two-minute run.
        time_scale=1.0,
    )
    system = LocalSystem(options)
    started = time.monotonic()
    system.start()
    ready = time.monotonic() - started
    try:
        state = system.state()
        api = Api(system.api_url)
        users = workdir / "users.json"
        creator = issue_token("creator", state, users)
        backer = issue_token("backer", state, users)
        status, body = api.call(
            "POST",
            "/api/funding",
            creator,
            campaign_body("benchmark", "happy path", 10**12),
        )
        if status != 201:
            print(f"error: creating the campaign failed: {status} {body}", file=sys.stderr)
            return 1
        funding_id = body["fundingId"]
        time.sleep(2.0)  # let start-up traffic (schedules' first runs) settle before counting
        system.aws_calls(reset=True)
        emulator_pid = system.emulator_pid()
        emulator_cpu_before = process_cpu_seconds(emulator_pid)
        system_cpu_before = system_cpu_seconds()

        submitted: dict[str, float] = {}  # paymentId -> wall-clock epoch seconds of the POST
        finished: dict[str, float] = {}  # paymentId -> epoch seconds the system stored as terminal
        lock = threading.Lock()

        def pay(_: int) -> None:
            request = {
                "status": 1,
                "payload": {"fundingId": funding_id, "amount": 10_000, "paymentMethod": "card"},
            }
            sent = time.time()
            code, answer = api.call("POST", "/api/payments", backer, request)
            if code in (201, 202):
                with lock:
                    submitted[answer["paymentId"]] = sent

        dynamodb = emulator_client("dynamodb", system.emulator_url, system.region)
        payments_table = table_name(state, PAYMENTS_TABLE.logical_name)
        scans = 0
        states: dict[str, str] = {}

        def read_terminal() -> None:
            """Read the payments not yet terminal (BatchGetItem, 100 keys a call: a Scan of the
            whole table each second would cost the emulator more than the system's own work)."""
            nonlocal scans
            waiting = [p for p in submitted if p not in finished]
            for start in range(0, len(waiting), 100):
                keys = [{"paymentId": {"S": p}} for p in waiting[start : start + 100]]
                request = {payments_table: {"Keys": keys}}
                while request:
                    page = dynamodb.batch_get_item(RequestItems=request)
                    scans += 1
                    for raw in page["Responses"].get(payments_table, []):
                        state_name = raw["state"]["S"]
                        stamp = raw.get(TERMINAL_TIMESTAMP.get(state_name, ""), {}).get("S")
                        if state_name in TERMINAL and stamp:
                            finished[raw["paymentId"]["S"]] = _epoch(stamp)
                            states[raw["paymentId"]["S"]] = state_name
                    request = page.get("UnprocessedKeys") or {}

        run_started = time.time()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(pay, range(args.payments)))
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            read_terminal()
            if all(p in finished for p in submitted):
                break
            time.sleep(1.0)
        elapsed = max(finished.values(), default=run_started) - run_started
        time.sleep(3.0)  # the ledger and notifications drain after the last capture
        calls = system.aws_calls()
        emulator_cpu = process_cpu_seconds(emulator_pid) - emulator_cpu_before
        system_cpu = sum(
            spent - system_cpu_before.get(pid, 0.0) for pid, spent in system_cpu_seconds().items()
        )
        moto_cpu = local_call(system.emulator_url, CPU_PATH, None, timeout=5)
        polling = scans  # this benchmark's own BatchGetItem calls, not the system's work
        latencies = [finished[p] - submitted[p] for p in submitted if p in finished]
        captured = sum(1 for p in submitted if states.get(p) == "CAPTURED")
    finally:
        system.stop()

    system_calls = sum(calls.values()) - polling
    print(f"ready after {ready:.1f} s (emulator, program deployed onto it, functions, API; target <= 10 s)")
    print(f"payments: {len(submitted)} accepted, {len(finished)} terminal, {captured} captured")
    if latencies:
        print(
            f"end to end: {len(latencies) / elapsed:.1f} payments/s at concurrency {args.concurrency} "
            "(target >= 40); "
            f"POST→terminal p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms (target p50 <= 3000 ms)"
        )
    if captured:
        print(
            f"AWS API calls per captured payment: {system_calls / captured:.1f} "
            f"(target <= 10; {system_calls} calls, excluding {polling} BatchGetItem calls of this benchmark)"
        )
        receives = calls.get("sqs:ReceiveMessage", 0)
        print(
            f"  of which SQS ReceiveMessage (event source mapping polls, many empty): "
            f"{receives / captured:.1f}; "
            f"without them: {(system_calls - receives) / captured:.1f}"
        )
        print(
            f"CPU per captured payment, whole system (this process, the emulator, the API, every "
            f"execution environment): {system_cpu / captured * 1000:.0f} ms, so at most "
            f"{captured / system_cpu * (os.cpu_count() or 1) if system_cpu else 0:.0f} payments/s "
            f"on this machine's {os.cpu_count()} cores"
        )
        print(
            f"emulator CPU per captured payment: {emulator_cpu / captured * 1000:.0f} ms "
            f"(one process: at most {captured / emulator_cpu if emulator_cpu else 0:.0f} payments/s "
            "on one core); moto's share by action: "
            + ", ".join(
                f"{name} {figures['cpuMs'] / captured:.1f} ms" for name, figures in list(moto_cpu.items())[:6]
            )
        )
    top = sorted(calls.items(), key=lambda item: -item[1])[:12]
    print("top calls: " + ", ".join(f"{name} {count}" for name, count in top))
    return 0 if all(p in finished for p in submitted) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
