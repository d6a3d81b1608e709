"""The local Lambda runtime without a whole system: pools, mappings, the Invoke API, schedules, and
real execution environments forked by the zygote (crashes, timeouts, concurrency)."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local import PRODUCT
from toolchain.embedded.faults import CRASH_AT_RETURN
from toolchain.embedded.mocks import LocalDeployment, LocalFunction, LocalMapping, LocalSchedule
from toolchain.embedded.runtime import (
    DEFAULT_MAPPING_CONCURRENCY,
    INVOKE_CONCURRENCY,
    Environment,
    Fleet,
    FunctionPool,
    LambdaApi,
    QueuePoller,
    Scheduler,
    free_port,
    mapping_concurrency,
)
from toolchain.embedded.system import LocalSystem, SystemOptions, banner
from toolchain.embedded.zygote import Zygote

REGION = "ap-northeast-2"

# --- pools ----------------------------------------------------------------------------------------


def fake_environment(ordinal: int) -> Environment:
    return Environment("fn", ordinal, 0, SimpleNamespace())  # type: ignore[arg-type]


def test_a_pool_reuses_idle_environments_and_starts_more_up_to_its_limit() -> None:
    started: list[int] = []

    def spawn(ordinal: int) -> Environment:
        started.append(ordinal)
        return fake_environment(ordinal)

    pool = FunctionPool("fn", 2, spawn)
    first, cold = pool.acquire()
    assert cold and started == [0]
    pool.release(first, alive=True)
    again, cold = pool.acquire()
    assert again is first and not cold
    second, cold = pool.acquire()
    assert cold and pool.size == 2 and pool.cold_starts == 2
    got: list[Environment] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()[0]))
    waiter.start()
    time.sleep(0.1)
    assert not got, "a third concurrent invocation must wait at the limit"
    pool.release(second, alive=False)  # it died: the waiter gets a fresh environment
    waiter.join(2)
    assert got and got[0].ordinal == 2 and pool.size == 2 and pool.cold_starts == 3


def test_mapping_concurrency_follows_scaling_config_with_awss_floor() -> None:
    def mapping(maximum: float | None) -> LocalMapping:
        return LocalMapping("arn:q", "fn", 10, 0, True, maximum)

    assert mapping_concurrency(mapping(None)) == DEFAULT_MAPPING_CONCURRENCY
    assert mapping_concurrency(mapping(1)) == 2
    assert mapping_concurrency(mapping(10.0)) == 10
    # MAPPING_CONCURRENCY_CAP lowers it for a small machine, never below AWS's floor of 2.
    assert mapping_concurrency(mapping(10.0), 3) == 3
    assert mapping_concurrency(mapping(10.0), 1) == 2
    assert mapping_concurrency(mapping(None), 8) == DEFAULT_MAPPING_CONCURRENCY


# --- an event source mapping, against a fake queue and fleet -------------------------------------


class FakeSqs:
    """Enough of SQS for a mapping: messages in, deletes and visibility changes recorded."""

    def __init__(self, count: int) -> None:
        self.lock = threading.Lock()
        self.waiting = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": json.dumps({"n": i})}
            for i in range(count)
        ]
        self.deleted: list[str] = []
        self.retried: list[str] = []

    def receive_message(self, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> dict[str, Any]:
        with self.lock:
            batch, self.waiting = self.waiting[:MaxNumberOfMessages], self.waiting[MaxNumberOfMessages:]
        if not batch:
            time.sleep(min(WaitTimeSeconds, 0.05))
        return {"Messages": batch}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        with self.lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]

    def change_message_visibility(self, ReceiptHandle: str, **_: Any) -> None:
        with self.lock:
            self.retried.append(ReceiptHandle)


class SlowFleet:
    """Invocations take a while; records whose number is divisible by 7 fail."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.15)
        with self.lock:
            self.in_flight -= 1
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] % 7 == 0]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}, False


def test_a_busy_mapping_runs_batches_concurrently_up_to_its_maximum_and_settles_each_record() -> None:
    sqs = FakeSqs(120)
    fleet = SlowFleet()
    mapping = LocalMapping("arn:aws:sqs:r:1:q", "fn", 5, 0, True, 3)
    poller = QueuePoller(mapping, "http://q", 30, fleet, sqs, REGION, 60.0)  # type: ignore[arg-type]
    poller.start()
    deadline = time.monotonic() + 20
    while len(sqs.deleted) + len(sqs.retried) < 120 and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stopping.set()
    poller.join(5)
    assert fleet.peak == poller.peak_batches == 3, "three lanes at most, and all of them used"
    assert sorted(sqs.deleted + sqs.retried) == sorted(f"r{i}" for i in range(120))
    assert sorted(sqs.retried) == sorted(f"r{i}" for i in range(120) if i % 7 == 0)
    assert poller.delivered == 120 and poller.failed_records == len(sqs.retried)


def test_an_idle_mapping_keeps_one_long_poll() -> None:
    sqs = FakeSqs(3)
    fleet = SlowFleet()
    mapping = LocalMapping("arn:aws:sqs:r:1:q", "fn", 10, 0, True, 10)
    poller = QueuePoller(mapping, "http://q", 30, fleet, sqs, REGION, 60.0)  # type: ignore[arg-type]
    poller.start()
    time.sleep(0.6)
    poller.stopping.set()
    poller.join(5)
    assert fleet.peak == 1 and poller._lanes == 1


# --- the Invoke API -------------------------------------------------------------------------------


class CountingFleet(SlowFleet):
    def resolve(self, name: str) -> Any:
        if name.startswith("missing"):
            raise KeyError(name)
        return SimpleNamespace(name=name, arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}")

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.3)
        with self.lock:
            self.in_flight -= 1
        return {"echo": event}, False


@pytest.fixture
def lambda_api() -> Iterator[LambdaApi]:
    api = LambdaApi(free_port())
    api.fleet = CountingFleet()  # type: ignore[assignment]
    api.start()
    yield api
    api.stop()


def lambda_client(api: LambdaApi) -> Any:
    return boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name=REGION
    ).client(
        "lambda",
        endpoint_url=api.url,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=20),
    )


def test_the_invoke_api_serves_concurrent_calls_up_to_its_cap(lambda_api: LambdaApi) -> None:
    client = lambda_client(lambda_api)
    answers: list[Any] = []

    def call(i: int) -> None:
        response = client.invoke(FunctionName="gateway", Payload=json.dumps({"i": i}).encode())
        answers.append(json.loads(response["Payload"].read()))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(INVOKE_CONCURRENCY + 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == INVOKE_CONCURRENCY + 4
    assert lambda_api.fleet.peak == INVOKE_CONCURRENCY  # type: ignore[union-attr]
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="missing-fn", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_invoke_api_asks_the_authorizer_with_the_callers_request(lambda_api: LambdaApi) -> None:
    seen: list[tuple[str, str, str]] = []

    def refuse(
        method: str, path: str, query: str, headers: dict[str, str], body: bytes, action: str, resource: str
    ) -> Any:
        seen.append((action, resource, headers.get("Authorization", "")[:16]))
        return (
            403,
            [("x-amzn-ErrorType", "AccessDeniedException"), ("Content-Type", "application/json")],
            json.dumps(
                {"Type": "User", "message": "User: x is not authorized to perform: lambda:InvokeFunction"}
            ).encode(),
        )

    lambda_api.authorize = refuse
    with pytest.raises(ClientError) as denied:
        lambda_client(lambda_api).invoke(FunctionName="gateway", Payload=b"{}")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert seen == [
        (
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{REGION}:123456789012:function:gateway",
            "AWS4-HMAC-SHA256",
        )
    ]


# --- schedules ------------------------------------------------------------------------------------


class ScheduledFleet:
    def __init__(self, seconds: float, error: bool) -> None:
        self.seconds = seconds
        self.error = error
        self.calls = 0
        self.lock = threading.Lock()

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        with self.lock:
            self.calls += 1
        time.sleep(self.seconds)
        return ({"errorMessage": "boom"} if self.error else None), self.error

    def resolve(self, name: str) -> Any:
        return SimpleNamespace(name="closer", dead_letter_arn="arn:aws:sqs:r:1:closer-dlq")


def test_schedules_fire_on_time_even_while_the_previous_run_goes_on() -> None:
    schedule = LocalSchedule("every-minute", "rate(1 minute)", "arn:aws:lambda:r:1:function:closer")
    fleet = ScheduledFleet(0.5, error=False)
    scheduler = Scheduler([schedule], fleet, REGION, time_scale=300.0)  # type: ignore[arg-type]
    scheduler.start()
    time.sleep(1.2)
    scheduler.stopping.set()
    scheduler.join(2)
    assert scheduler.fired["every-minute"] >= 3
    assert scheduler.overlaps["every-minute"] >= 1


def test_a_failed_scheduled_run_is_retried_twice_then_dead_lettered() -> None:
    schedule = LocalSchedule("every-minute", "rate(1 minute)", "arn:aws:lambda:r:1:function:closer")
    fleet = ScheduledFleet(0.0, error=True)
    lettered: list[tuple[str, Any]] = []
    scheduler = Scheduler(
        [schedule],
        fleet,  # type: ignore[arg-type]
        REGION,
        time_scale=600.0,
        dead_letter=lambda function, event, error: lettered.append((function.name, error)),
    )
    scheduler.fire(schedule)
    assert fleet.calls == 3 and scheduler.retried["every-minute"] == 2
    assert lettered == [("closer", {"errorMessage": "boom"})]


# --- real execution environments ------------------------------------------------------------------

HANDLER = """
import os, time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise ValueError("boom")
    return {"pid": os.getpid(), "greeting": os.environ.get("GREETING"), "id": context.aws_request_id}
"""


class Plans:
    """A crash planner that follows a script."""

    def __init__(self) -> None:
        self.next: list[str | None] = []

    def plan(self, function: str) -> str | None:
        return self.next.pop(0) if self.next else None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("fleet")
    archive = workdir / "fn.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("tiny_fn.py", HANDLER)
    deployment = LocalDeployment(region=REGION)
    deployment.functions["tiny"] = LocalFunction(
        name="tiny",
        arn=f"arn:aws:lambda:{REGION}:123456789012:function:tiny",
        handler="tiny_fn.handler",
        runtime="python3.11",
        archive=str(archive),
        environment={"GREETING": "hello"},
        timeout=1,
        memory=128,
    )
    from toolchain.embedded.runtime import base_process_environment

    zygote = Zygote(base_process_environment(), workdir / "zygote.log")
    assert zygote.wait_ready(60)
    fleet = Fleet(deployment, "http://127.0.0.1:9", "http://127.0.0.1:9", workdir, zygote=zygote)
    fleet.crashes = Plans()  # type: ignore[assignment]
    fleet.start()
    yield fleet
    fleet.stop()
    zygote.close()


def test_an_environment_runs_the_archive_with_its_declared_environment(fleet: Fleet) -> None:
    payload, error = fleet.invoke("tiny", {})
    assert not error and payload["greeting"] == "hello"
    payload, error = fleet.invoke("tiny", {"raise": True})
    assert error and payload["errorType"] == "ValueError"
    log = fleet.log_path("tiny").read_text()
    assert "[ERROR] ValueError: boom" in log and "REPORT RequestId:" in log and "Init Duration" in log


def test_concurrent_invocations_run_in_separate_environments(fleet: Fleet) -> None:
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(fleet.invoke("tiny", {"sleep": 0.4})[0]))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len({r["pid"] for r in results}) == 3
    assert fleet.peak["tiny"] >= 3 and fleet.pools["tiny"].cold_starts >= 2


def test_a_killed_environment_is_reported_as_lambda_does_and_replaced(fleet: Fleet) -> None:
    plans = fleet.crashes
    assert isinstance(plans, Plans)
    before = fleet.crashes_injected["tiny"]
    plans.next = ["0", CRASH_AT_RETURN]
    for _ in range(2):
        payload, error = fleet.invoke("tiny", {})
        assert error and payload["errorType"] == "Runtime.ExitError"
        assert "Runtime exited with error: signal: killed" in payload["errorMessage"]
    assert fleet.crashes_injected["tiny"] == before + 2
    payload, error = fleet.invoke("tiny", {})
    assert not error and payload["greeting"] == "hello"
    log = fleet.log_path("tiny").read_text()
    assert "CRASH_RATE: killed before any AWS call" in log and "Runtime.ExitError" in log


def test_an_invocation_past_its_timeout_is_killed(fleet: Fleet) -> None:
    payload, error = fleet.invoke("tiny", {"sleep": 5})
    assert error and payload["errorType"] == "Sandbox.Timedout"
    assert fleet.timeouts["tiny"] >= 1
    assert not fleet.invoke("tiny", {})[1]


# --- options and banner ---------------------------------------------------------------------------


def test_fault_knobs_come_from_the_environment_and_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_FAULT_RATE", "0.05")
    monkeypatch.setenv("CRASH_RATE", "0.02")
    monkeypatch.setenv("FAULT_SEED", "9")
    options = SystemOptions.from_environment()
    assert (options.aws_fault_rate, options.crash_rate, options.fault_seed) == (0.05, 0.02, 9)
    monkeypatch.setenv("MAPPING_CONCURRENCY_CAP", "3")
    assert SystemOptions.from_environment().mapping_concurrency_cap == 3
    monkeypatch.setenv("MAPPING_CONCURRENCY_CAP", "0")
    with pytest.raises(SystemExit, match="MAPPING_CONCURRENCY_CAP"):
        SystemOptions.from_environment()
    monkeypatch.delenv("MAPPING_CONCURRENCY_CAP")
    monkeypatch.setenv("CRASH_RATE", "2")
    with pytest.raises(SystemExit, match="CRASH_RATE"):
        SystemOptions.from_environment()


def test_the_banner_says_iam_is_enforced_and_shows_every_fault_knob(tmp_path: Path) -> None:
    options = SystemOptions(
        aws_fault_rate=0.05,
        crash_rate=0.02,
        duplicate_rate=0.1,
        fault_seed=3,
        workdir=tmp_path,
        product=PRODUCT,
    )
    options.environment_overrides = {"PG_DECLINE_RATE": "0.05"}
    system = LocalSystem(options)
    system.deployment = LocalDeployment(region=REGION)
    system.deployment.mappings.append(LocalMapping("arn:q", "processor-function", 10, 1, True, 10))
    text = banner(system)
    assert "IAM           enforced" in text
    assert "AWS_FAULT_RATE=0.05 CRASH_RATE=0.02 DUPLICATE_RATE=0.1 FAULT_SEED=3" in text
    assert "PG_DECLINE_RATE=0.05" in text and "processor 10" in text
    assert text.lstrip().startswith("crowdfunding is running locally") and "/api/fundings" in text
    assert "make token USER=alice" in text


def test_the_runner_knows_no_product_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's words and knobs come from the product: a bare runner serves no API and turns
    none of the crowdfunding gateway's knobs, whatever the environment says."""
    monkeypatch.setenv("PG_DECLINE_RATE", "0.5")
    bare = SystemOptions.from_environment()
    assert bare.environment_overrides == {} and bare.product.api_app is None
    assert SystemOptions.from_environment(PRODUCT).environment_overrides == {"PG_DECLINE_RATE": "0.5"}
    system = LocalSystem(SystemOptions(workdir=tmp_path))
    system.deployment = LocalDeployment(region=REGION)
    text = banner(system)
    assert "  API  " not in text and "crowdfunding" not in text and "PG_" not in text


def test_a_program_that_refuses_its_declaration_stops_the_start_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolchain.embedded import system as system_module

    def refuse(*_: Any, **__: Any) -> Any:
        raise ValueError("function reconciler declares LEDGER_QUEUE_URL, which nothing maps")

    monkeypatch.setattr(system_module, "synthesize", refuse)
    monkeypatch.setattr(system_module, "wait_until_ready", lambda url: None)
    with pytest.raises(RuntimeError, match=r"the infra program for stack 'local' failed .*LEDGER_QUEUE_URL"):
        LocalSystem(SystemOptions(workdir=tmp_path))._deploy()


def test_a_prestarted_process_runs_with_exactly_the_environment_it_is_sent(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "probe_env.py").write_text(
        "import json, os, sys\n"
        "open(os.environ['OUT'], 'w').write(json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:]}))\n"
    )
    started = subprocess.Popen(
        [sys.executable, "-m", "toolchain.embedded.prestart", "probe_env"],
        stdin=subprocess.PIPE,
        env={
            **os.environ,
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "RUNNER_ONLY": "x",
        },
    )
    out = tmp_path / "out.json"
    started.communicate(
        json.dumps({"env": {"OUT": str(out), "TASK": "api"}, "argv": ["--port", "1"]}).encode(), timeout=60
    )
    assert started.returncode == 0
    seen = json.loads(out.read_text())
    assert seen["env"] == {"OUT": str(out), "TASK": "api"} and seen["argv"] == ["--port", "1"]


def test_a_child_of_the_runner_ends_when_the_runner_is_killed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pid_file = tmp_path / "child.pid"
    (tmp_path / "child.py").write_text(
        "import os, sys, time\n"
        "from toolchain.embedded.zygote import watch_parent\n"
        "watch_parent(os.getppid(), 0.2)\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    (tmp_path / "runner.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], start_new_session=True)\n"
        "time.sleep(60)\n"
    )
    runner = subprocess.Popen(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "child.py"), str(pid_file)]
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    runner.kill()  # the runner dies without stopping anything
    runner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, 9)
    raise AssertionError("the child outlived the runner")
