"""Benchmark the embedded system end to end (127.0.0.1 only; bounded in count and time).

Prints:
- time from start to ready (what `make run` shows before its banner);
- end-to-end payments/s and p50/p95 latency from `POST /api/payments` to a terminal state,
  for a fixed run of N payments on a gateway that never fails (the happy path);
- AWS API calls per captured payment on that happy path, counted at the emulator
  (target ≤ 12), with the top calls by service:Action.

Usage: .venv/bin/python bench/bench_embedded.py [--payments 60] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.local.demo import Api, campaign_body
from infra.local.runtime import free_port
from infra.local.system import LocalSystem, SystemOptions
from infra.local.token import issue_token
from lambdas.shared.contract import TERMINAL_PAYMENT_STATES

TERMINAL = {str(s) for s in TERMINAL_PAYMENT_STATES}
DEADLINE_SECONDS = 300


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    if not 1 <= args.payments <= 1000:
        parser.error("--payments must be 1..1000")

    workdir = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    options = SystemOptions(
        emulator_port=free_port(),
        api_port=free_port(),
        workdir=workdir,
        state_file=None,
        gateway={"PG_TRANSIENT_FAILURE_RATE": "0", "PG_DECLINE_RATE": "0", "PG_LATENCY_MS": "0"},
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

        submitted: dict[str, float] = {}
        finished: dict[str, float] = {}
        lock = threading.Lock()

        def pay(_: int) -> None:
            request = {
                "status": 1,
                "payload": {"fundingId": funding_id, "amount": 10_000, "paymentMethod": "card"},
            }
            sent = time.monotonic()
            code, answer = api.call("POST", "/api/payments", backer, request)
            if code in (201, 202):
                with lock:
                    submitted[answer["paymentId"]] = sent

        run_started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(pay, range(args.payments)))
        deadline = time.monotonic() + DEADLINE_SECONDS
        polls = 0
        while len(finished) < len(submitted) and time.monotonic() < deadline:
            for payment_id in [p for p in submitted if p not in finished]:
                polls += 1
                code, answer = api.call("GET", f"/api/payments/{payment_id}", backer)
                if code == 200 and answer["payload"]["state"] in TERMINAL:
                    finished[payment_id] = time.monotonic()
            time.sleep(0.05)
        elapsed = time.monotonic() - run_started
        time.sleep(3.0)  # the ledger and notifications drain after the last capture
        calls = system.aws_calls()
        # Each poll by this benchmark is one GetItem through the API: not the system's own work.
        polling = min(polls, calls.get("dynamodb:GetItem", 0))
        latencies = [finished[p] - submitted[p] for p in finished]
        captured = sum(
            1
            for p in finished
            if api.call("GET", f"/api/payments/{p}", backer)[1]["payload"]["state"] == "CAPTURED"
        )
    finally:
        system.stop()

    system_calls = sum(calls.values()) - polling
    print(f"ready after {ready:.1f} s (emulator, program deployed onto it, 9 functions, API)")
    print(f"payments: {len(submitted)} accepted, {len(finished)} terminal, {captured} captured")
    if latencies:
        print(
            f"end to end: {len(finished) / elapsed:.1f} payments/s; "
            f"POST→terminal p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms"
        )
    if captured:
        print(
            f"AWS API calls per captured payment: {system_calls / captured:.1f} "
            f"(target <= 12; {system_calls} calls, excluding {polling} GetItem polls by this benchmark)"
        )
        receives = calls.get("sqs:ReceiveMessage", 0)
        print(
            f"  of which SQS ReceiveMessage (event source mapping polls, many empty): "
            f"{receives / captured:.1f}; "
            f"without them: {(system_calls - receives) / captured:.1f}"
        )
    top = sorted(calls.items(), key=lambda item: -item[1])[:12]
    print("top calls: " + ", ".join(f"{name} {count}" for name, count in top))
    return 0 if len(finished) == len(submitted) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
