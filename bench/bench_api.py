"""Benchmark of the API service against the local emulator, on 127.0.0.1 only. Run by hand:

    .venv/bin/python bench/bench_api.py [--requests 400] [--seconds 20]

It starts moto's server and uvicorn serving `app.main:app` (each in its own process), creates the
API's tables, the payments topic and a Cognito pool, signs a user in, then measures, each run bounded
by a request count and a time limit:

- GET /api/funding/{id} and POST /api/payments at concurrency 1 and 16: requests/s, p50, p99;
- a direct boto3 GetItem on the same emulator at concurrency 1;
- the app overhead ratio = app GET p50 ÷ direct GetItem p50 (target ≤ 1.5 at concurrency 1).

The HTTP client is http.client over keep-alive connections, one per worker thread, so the client adds
as little as possible to what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from lambdas.shared import contract  # noqa: E402
from tests.app.api_testkit import UserPool, campaign_body, create_api_tables, payment_body  # noqa: E402

HOST = "127.0.0.1"
REGION = "us-east-1"

Worker = Callable[[int], bool]
"""One request; True when it got the expected answer."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection(HOST, port, timeout=1)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on {HOST}:{port}{path} within {timeout}s")


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, probe, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Result:
    name: str
    concurrency: int
    latencies_ms: list[float]
    errors: int
    elapsed_s: float

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def line(self) -> str:
        rate = len(self.latencies_ms) / self.elapsed_s
        return (
            f"{self.name:<28} c={self.concurrency:<3} n={len(self.latencies_ms):<5} errors={self.errors:<3} "
            f"{rate:8.1f} req/s   p50 {self.p50:7.2f} ms   p99 {self.p99:7.2f} ms"
        )


def measure(
    name: str,
    concurrency: int,
    requests: int,
    seconds: float,
    make_worker: Callable[[], Worker],
    warmup: int = 20,
) -> Result:
    """Run `requests` calls (or until `seconds` pass) over `concurrency` threads, each with its own worker."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    def loop() -> None:
        nonlocal errors
        call = make_worker()
        for i in range(warmup // concurrency + 1):
            call(-1 - i)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            ok = call(index)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(loop) for _ in range(concurrency)]:
            future.result()
    return Result(name, concurrency, latencies, errors, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per run (default 400)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per run (default 20)")
    args = parser.parse_args()

    moto_port, api_port = free_port(), free_port()
    endpoint = f"http://{HOST}:{moto_port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
    }
    base_env = {**os.environ, **credentials}
    bin_dir = Path(sys.executable).parent
    moto = [str(bin_dir / "moto_server"), "-H", HOST, "-p", str(moto_port)]

    with running(moto, base_env, moto_port, "/moto-api/"):
        session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        tables = create_api_tables(dynamodb)
        topic_arn = session.client("sns", endpoint_url=endpoint).create_topic(Name="payments")["TopicArn"]
        pool = UserPool.create(session.client("cognito-idp", endpoint_url=endpoint))
        token = pool.tokens_for()["IdToken"]

        api_env = {
            **base_env,
            **tables,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            contract.ENV_PAYMENTS_TOPIC_ARN: topic_arn,
            contract.ENV_COGNITO_USER_POOL_ID: pool.pool_id,
            contract.ENV_COGNITO_APP_CLIENT_ID: pool.client_id,
            # One user sends every request: limits high enough never to refuse, still counted (the
            # quota's conditional UpdateItem is part of what a payment costs).
            "QUOTA_PAYMENTS_PER_MINUTE": "1000000",
            "QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY": "1000000",
            "QUOTA_CAMPAIGNS_PER_DAY": "1000000",
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(api_port)]
        uvicorn += ["--no-access-log", "--log-level", "warning"]
        with running(uvicorn, {**api_env, "PYTHONPATH": str(ROOT)}, api_port, "/healthz"):
            run_benchmarks(args.requests, args.seconds, api_port, token, dynamodb, tables)


def run_benchmarks(
    requests: int, seconds: float, api_port: int, token: str, dynamodb: Any, tables: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def api_call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(HOST, api_port, timeout=10)
        connection.request(method, path, body=json.dumps(body) if body else None, headers=auth)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    status, created = api_call(
        "POST", "/api/funding", campaign_body(goalAmount=10**15, minAmount=1, maxAmount=10**9)
    )
    assert status == 201, created
    funding_id = created["fundingId"]
    get_path = f"/api/funding/{funding_id}"
    payment = json.dumps(payment_body(funding_id, 1_000))
    fundings_table = tables[contract.FUNDINGS_TABLE.env_var]

    def http_worker(method: str, path: str, body: str | None, expected: int) -> Callable[[], Worker]:
        def make() -> Worker:
            connection = http.client.HTTPConnection(HOST, api_port, timeout=10)

            def call(_: int) -> bool:
                connection.request(method, path, body=body, headers=auth)
                response = connection.getresponse()
                response.read()
                return response.status == expected

            return call

        return make

    def boto3_worker() -> Worker:
        def call(_: int) -> bool:
            item = dynamodb.get_item(TableName=fundings_table, Key={"fundingId": {"S": funding_id}})
            return "Item" in item

        return call

    print(f"bench_api: {requests} requests or {seconds:.0f} s per run, on {HOST} (moto server + uvicorn)")
    direct = measure("boto3 GetItem (direct)", 1, requests, seconds, boto3_worker)
    print(direct.line())
    results = []
    for concurrency in (1, 16):
        for name, method, path, body, expected in (
            ("GET /api/funding/{id}", "GET", get_path, None, 200),
            ("POST /api/payments", "POST", "/api/payments", payment, 201),
        ):
            result = measure(name, concurrency, requests, seconds, http_worker(method, path, body, expected))
            results.append(result)
            print(result.line())
    app_get = results[0]
    ratio = app_get.p50 / direct.p50
    verdict = "meets" if ratio <= 1.5 else "misses"
    print(f"app overhead ratio (GET p50 / GetItem p50, c=1): {ratio:.2f} ({verdict} the 1.5 target)")


if __name__ == "__main__":
    main()
