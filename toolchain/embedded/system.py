"""Start and stop the whole system on one machine: emulator, program, functions, API.

Used by `make run` (`python -m toolchain.embedded`), by `make demo`, by the end-to-end tests and by the
benchmark, so all of them run exactly the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsblocks.testing import Synthesis
from botocore.exceptions import ClientError

from toolchain.embedded.access import trusts_service
from toolchain.embedded.emulator import emulator_client, local_call, read_calls, wait_until_ready
from toolchain.embedded.faults import CrashPlanner, check_rate
from toolchain.embedded.mocks import EmulatorMocks, LocalDeployment, LocalFunction
from toolchain.embedded.runtime import (
    LOOPBACK,
    Fleet,
    FunctionLog,
    LambdaApi,
    QueuePoller,
    RoleSession,
    Scheduler,
    assume_role,
    base_process_environment,
    emulator_authorizer,
    free_port,
    mapping_concurrency,
    queue_visibility,
)
from toolchain.embedded.zygote import Zygote
from toolchain.project import REPO_ROOT, read_stack_config, synthesize

LOCAL_STACK = "local"
STATE_FILE = REPO_ROOT / ".run" / "local.json"


@dataclass(frozen=True)
class LocalProduct:
    """What the runner needs of a product that its Pulumi program does not say.

    The program says what to deploy and how the functions are wired; a product adds what to serve
    in its web service's task, which knobs a run may turn, and the words of the banner
    (`local/__init__.py` is the crowdfunding product's). The default serves no API.
    """

    title: str = "the stack"
    """The banner's first words: "<title> is running locally"."""
    api_app: str | None = None
    """The ASGI application the web service's task runs (`module:attribute`, as uvicorn takes it;
    the image's CMD); None serves no API locally."""
    try_path: str = "/"
    """A path the banner suggests trying with curl."""
    environment_overrides: tuple[str, ...] = ()
    """Environment variables a run may set (`make run VAR=…`) to override the functions' settings
    of the same name, for functions that declare them."""
    hints: tuple[str, ...] = ()
    """More banner lines (how to get a token, what to run next)."""


Progress = Callable[[str], None]


@dataclass
class SystemOptions:
    """How to run the embedded system."""

    emulator_port: int = 4566
    api_port: int = 8080
    time_scale: float = 60.0
    """Schedules and visibility timeouts run this many times faster than on AWS."""
    duplicate_rate: float = 0.0
    """Probability that a processed message is delivered again (at-least-once delivery faults)."""
    seed: int | None = None
    """Seed of the duplicate deliveries (default: `fault_seed`)."""
    aws_fault_rate: float = 0.0
    """Share of the functions' and the API's AWS calls that fail as AWS fails them (throttling, 5xx)."""
    crash_rate: float = 0.0
    """Share of invocations whose execution environment is killed mid-invocation."""
    fault_seed: int = 0
    """Seed of every injected fault (AWS faults, crashes, duplicates): same seed, same faults."""
    mapping_concurrency_cap: int | None = None
    """At most this many batches of one queue at once (never below 2); None: as the program's
    ScalingConfig says. For small machines, where batches beyond the cores only queue."""
    product: LocalProduct = field(default_factory=LocalProduct)
    """The product's side of the run: what the API serves, its knobs, its banner."""
    environment_overrides: dict[str, str] = field(default_factory=dict)
    """Values for the functions' environment variables of those names, for this run (the
    product's `environment_overrides` knobs, e.g. a fake dependency's failure rate)."""
    workdir: Path = REPO_ROOT / ".run"
    state_file: Path | None = STATE_FILE

    def __post_init__(self) -> None:
        for name, value in (
            ("DUPLICATE_RATE", self.duplicate_rate),
            ("AWS_FAULT_RATE", self.aws_fault_rate),
            ("CRASH_RATE", self.crash_rate),
        ):
            check_rate(name, value)
        if self.mapping_concurrency_cap is not None and self.mapping_concurrency_cap < 1:
            raise ValueError(
                f"MAPPING_CONCURRENCY_CAP={self.mapping_concurrency_cap}: allowed: a positive number of "
                "batches (2 or more; unset: as the program's ScalingConfig says)"
            )

    @classmethod
    def from_environment(cls, product: LocalProduct | None = None) -> SystemOptions:
        """Options from EMULATOR_PORT, PORT, TIME_SCALE, DUPLICATE_RATE, AWS_FAULT_RATE, CRASH_RATE,
        FAULT_SEED, MAPPING_CONCURRENCY_CAP and the product's `environment_overrides` variables."""
        product = product or LocalProduct()

        def number(name: str, default: float | None, cast: Callable[[str], Any] = float) -> Any:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return cast(raw)
            except ValueError:
                raise SystemExit(f"error: {name}={raw!r} is not a valid number") from None

        try:
            return cls(
                emulator_port=number("EMULATOR_PORT", 4566, int),
                api_port=number("PORT", 8080, int),
                time_scale=number("TIME_SCALE", 60.0),
                duplicate_rate=number("DUPLICATE_RATE", 0.0),
                aws_fault_rate=number("AWS_FAULT_RATE", 0.0),
                crash_rate=number("CRASH_RATE", 0.0),
                fault_seed=number("FAULT_SEED", 0, int),
                mapping_concurrency_cap=number("MAPPING_CONCURRENCY_CAP", None, int),
                product=product,
                environment_overrides={
                    k: os.environ[k] for k in product.environment_overrides if os.environ.get(k)
                },
            )
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((LOOPBACK, port)) != 0


class LocalSystem:
    """The running system. Use as a context manager or call start()/stop()."""

    def __init__(self, options: SystemOptions | None = None, progress: Progress | None = None) -> None:
        self.options = options or SystemOptions()
        self.progress: Progress = progress or (lambda line: None)
        self.emulator_url = f"http://{LOOPBACK}:{self.options.emulator_port}"
        self.api_url = f"http://{LOOPBACK}:{self.options.api_port}"
        self.region = read_stack_config(LOCAL_STACK).get("aws:region", "ap-northeast-2")
        self.deployment: LocalDeployment | None = None
        self.synthesis: Synthesis | None = None
        self.fleet: Fleet | None = None
        self.sessions: dict[str, RoleSession] = {}
        """function name → its execution environments' session."""
        self.api_session: RoleSession | None = None
        """The ECS task role's session the API runs with."""
        self.poller_sessions: dict[str, RoleSession] = {}
        self.service_sessions: dict[str, RoleSession] = {}
        """function name → the session Lambda uses to dead-letter its failed asynchronous events."""
        self.lambda_api: LambdaApi | None = None
        self.pollers: list[QueuePoller] = []
        self.scheduler: Scheduler | None = None
        self._emulator: subprocess.Popen[bytes] | None = None
        self._zygote: Zygote | None = None
        self._mocks: EmulatorMocks | None = None
        self._deferred: threading.Thread | None = None
        self._api: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_seconds = 0.0

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalSystem:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring everything up; raises with a clear message if any part fails."""
        self.started_at = time.monotonic()
        workdir = self.options.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir / "code", ignore_errors=True)
        for port, what in ((self.options.emulator_port, "EMULATOR_PORT"), (self.options.api_port, "PORT")):
            if not _port_is_free(port):
                raise RuntimeError(
                    f"port {port} on {LOOPBACK} is in use; stop what uses it or set {what}=<port>"
                )
        try:
            # Started first, each in its own process, so their imports overlap the deployment.
            self._zygote = Zygote(base_process_environment(), workdir / "zygote.log")
            if self.options.product.api_app:
                self._prestart_api(workdir)
            self._start_emulator(workdir)
            self._deploy()
            self._enforce_iam(on_api_session=lambda: self._launch_api(workdir))
            self._start_functions(workdir)
            self._wait_for_api(workdir)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at
        self._write_state()
        if self._mocks is not None and self._mocks.deferred:
            self._deferred = threading.Thread(target=self._create_deferred, daemon=True, name="deferred")
            self._deferred.start()

    def _create_deferred(self) -> None:
        """Alarms and dashboards: created once the system is ready (nothing running needs them)."""
        assert self._mocks is not None
        count = len(self._mocks.deferred)
        errors = self._mocks.create_deferred()
        if errors:
            self.progress(
                f"  {len(errors)} of {count} alarms and dashboards failed on the emulator: {errors[0]}"
            )

    def _start_emulator(self, workdir: Path) -> None:
        self.progress(f"starting the AWS emulator (moto) on {self.emulator_url} …")
        log = open(workdir / "emulator.log", "ab")  # noqa: SIM115 (lives with the process)
        self._emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "toolchain.embedded.emulator",
                "--port",
                str(self.options.emulator_port),
                "--region",
                self.region,
                "--parent",
                str(os.getpid()),
            ],
            env=base_process_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runner only, which stops everything in order
        )

    def _deploy(self) -> None:
        self.progress(f"running the infra program for stack '{LOCAL_STACK}' onto the emulator …")
        importlib.import_module("infra.stack")  # the program's imports, while the emulator boots
        wait_until_ready(self.emulator_url)
        mocks = EmulatorMocks(self.emulator_url, self.region)
        # The program's resource registrations and its data-source calls share the event loop's
        # thread pool; each registration now waits on the emulator, so give them room (the
        # default of cores + 4 threads queues the program's synchronous calls behind them).
        loop = asyncio.new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="deploy"))
        asyncio.set_event_loop(loop)
        try:
            self.synthesis = synthesize(LOCAL_STACK, mocks=mocks)
        except Exception as exc:  # the program refused its own declaration: say so, not a traceback
            raise RuntimeError(
                f"the infra program for stack '{LOCAL_STACK}' failed (fix it, or check `make preview`): {exc}"
            ) from exc
        self.deployment = mocks.deployment
        self._mocks = mocks
        created = len(self.deployment.created)
        recorded = len(self.deployment.recorded)
        self.progress(
            f"  {created} resources created on the emulator; {recorded} with no local meaning recorded "
            f"({self._since_start()})"
        )

    def _since_start(self) -> str:
        return f"{time.monotonic() - self.started_at:.1f} s since start"

    def _enforce_iam(self, on_api_session: Callable[[], None] | None = None) -> None:
        """Bootstrap is done: enforce IAM, then give every function, mapping and the API a session
        of its own role (the runner plays the service principal each role trusts)."""
        assert self.deployment is not None
        deployment = self.deployment
        status = local_call(self.emulator_url, "/_local/auth", {"enforce": True})
        if not status.get("enforcing"):
            raise RuntimeError(f"the emulator did not switch IAM enforcement on: {status}")
        local_call(
            self.emulator_url,
            "/_local/faults",
            {"rate": self.options.aws_fault_rate, "seed": self.options.fault_seed},
        )
        # Validate every trust first (clear errors before anything runs), then assume in parallel.
        wanted: list[tuple[dict[str, RoleSession], str, str, str, str]] = []
        for function in deployment.functions.values():
            role = deployment.role_named(function.role)
            if role is None:
                raise RuntimeError(
                    f"function {function.name}: its execution role {function.role or '(none)'} is not "
                    "declared by the program; give the function resource a `role` the program creates"
                )
            if not trusts_service(role.assume_role_policy, "lambda.amazonaws.com"):
                raise RuntimeError(
                    f"function {function.name}: role {role.name} does not trust lambda.amazonaws.com "
                    "(its assume-role policy), so Lambda could not assume it on AWS either; allow "
                    "sts:AssumeRole for the service principal lambda.amazonaws.com"
                )
            wanted.append((self.sessions, function.name, role.arn, "function", function.name))
            if function.dead_letter_arn:  # Lambda itself sends failed async events there, as the role
                wanted.append((self.service_sessions, function.name, role.arn, "service", function.name))
        for mapping in deployment.mappings:
            consumer = deployment.functions.get(mapping.function)
            if consumer is None:
                raise RuntimeError(f"event source mapping of {mapping.function}: no such function")
            wanted.append(
                (self.poller_sessions, mapping.queue_arn, consumer.role, "poller", mapping.function)
            )
        container = self._api_container()
        task_role = deployment.role_named(str(container.get("taskRoleArn") or ""))
        if task_role is None:
            raise RuntimeError(
                f"the ECS task definition {container.get('family')} declares no task role the program "
                "creates (taskRoleArn): the API would have no AWS credentials"
            )
        if not trusts_service(task_role.assume_role_policy, "ecs-tasks.amazonaws.com"):
            raise RuntimeError(
                f"the API's task role {task_role.name} does not trust ecs-tasks.amazonaws.com, so ECS "
                "could not assume it on AWS either; allow sts:AssumeRole for that service principal"
            )
        sts = emulator_client("sts", self.emulator_url, self.region)
        # The API's session first: the API (the slowest process to start) starts while the rest
        # of the sessions are assumed.
        self.api_session = assume_role(
            sts, self.emulator_url, task_role.arn, "api", str(container.get("family") or "api")
        )
        if on_api_session is not None:
            on_api_session()
        with ThreadPoolExecutor(max_workers=8) as pool:
            assumed = pool.map(lambda w: assume_role(sts, self.emulator_url, w[2], w[3], w[4]), wanted)
            for (into, key, *_), session in zip(wanted, assumed, strict=True):
                into[key] = session
        self.progress(
            f"  IAM enforced: {len(deployment.functions)} functions, {len(deployment.mappings)} event "
            f"source mappings and the API each run with a session of their own role ({self._since_start()})"
        )

    def _start_functions(self, workdir: Path) -> None:
        assert self.deployment is not None
        deployment = self.deployment
        self.lambda_api = LambdaApi(free_port())
        self.lambda_api.authorize = emulator_authorizer(self.emulator_url)
        self.lambda_api.start()
        self.fleet = Fleet(
            deployment,
            self.emulator_url,
            self.lambda_api.url,
            workdir,
            self.options.environment_overrides,
            sessions=self.sessions,
            crashes=CrashPlanner(self.options.crash_rate, self.options.fault_seed),
            zygote=self._zygote if self._zygote and self._zygote.wait_ready(30) else None,
        )
        self.lambda_api.fleet = self.fleet
        self.lambda_api.stats_provider = self.stats
        names = ", ".join(sorted(deployment.functions))
        self.progress(f"starting {len(deployment.functions)} functions from their archives: {names} …")
        self.fleet.start()
        from botocore.config import Config

        runner_sqs = emulator_client("sqs", self.emulator_url, self.region)
        seed = self.options.fault_seed if self.options.seed is None else self.options.seed
        for mapping in deployment.mappings:
            url = deployment.queues.get(mapping.queue_arn)
            if url is None:
                raise RuntimeError(
                    f"event source mapping of {mapping.function}: no queue {mapping.queue_arn}"
                )
            concurrency = mapping_concurrency(mapping, self.options.mapping_concurrency_cap)
            poller_sqs = self.poller_sessions[mapping.queue_arn].client(
                "sqs", self.emulator_url, self.region, Config(max_pool_connections=concurrency + 2)
            )
            try:  # as AWS's mapping does, with the function's role
                visibility = queue_visibility(poller_sqs, url)
            except ClientError as exc:
                raise RuntimeError(
                    f"event source mapping of {mapping.function}: its role cannot read the queue's "
                    f"attributes ({exc}); AWS would refuse the mapping: grant sqs:GetQueueAttributes "
                    f"on {mapping.queue_arn}"
                ) from None
            poller = QueuePoller(
                mapping,
                url,
                visibility,
                self.fleet,
                poller_sqs,
                self.region,
                self.options.time_scale,
                self.options.duplicate_rate,
                seed ^ zlib.crc32(mapping.queue_arn.encode()),  # per queue: independent of order
                runner_sqs=runner_sqs,
                concurrency_cap=self.options.mapping_concurrency_cap,
                log=FunctionLog(self.fleet.log_path(mapping.function)),
            )
            poller.start()
            self.pollers.append(poller)
        self.scheduler = Scheduler(
            list(deployment.schedules.values()),
            self.fleet,
            self.region,
            self.options.time_scale,
            dead_letter=self._dead_letter,
        )
        self.scheduler.start()
        self.progress(
            f"  {len(self.pollers)} queue pollers and {len(self.scheduler.schedules)} schedules "
            f"running (time scale x{self.options.time_scale:g}; {self._since_start()})"
        )

    def _dead_letter(self, function: LocalFunction, event: Any, error: Any) -> None:
        """Send a failed asynchronous event to the function's dead-letter target, as Lambda does."""
        assert self.deployment is not None and self.fleet is not None
        session = self.service_sessions[function.name]
        target = str(function.dead_letter_arn)
        message = str((error or {}).get("errorMessage") if isinstance(error, dict) else error)[:1000]
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": message or "Unhandled"},
        }
        try:
            if ":sqs:" in target:
                session.client("sqs", self.emulator_url, self.region).send_message(
                    QueueUrl=self.deployment.queues[target],
                    MessageBody=json.dumps(event),
                    MessageAttributes=attributes,
                )
            else:
                session.client("sns", self.emulator_url, self.region).publish(
                    TopicArn=target, Message=json.dumps(event), MessageAttributes=attributes
                )
        except (ClientError, KeyError) as exc:
            self.fleet.logs[function.name].write(
                f"Lambda could not send the failed event to the dead-letter target {target}: {exc}"
            )

    def _api_container(self) -> dict[str, Any]:
        assert self.deployment is not None
        containers = [
            c for c in self.deployment.containers if c.get("portMappings")
        ] or self.deployment.containers
        if not containers:
            raise RuntimeError("the program declares no ECS task definition: nothing to serve the API")
        return containers[0]

    def api_environment(self) -> dict[str, str]:
        """Exactly the environment the ECS task definition declares, the emulator endpoint and the
        credentials of a session of the task role."""
        container = self._api_container()
        env = base_process_environment()
        session = self.api_session
        if session is None:
            raise RuntimeError("the API has no task role session: start the system with start()")
        env.update(session.environment(self.emulator_url, self.region))
        for item in container.get("environment") or []:
            env[item["name"]] = _to_emulator(str(item["value"]), self.emulator_url)
        if container.get("secrets"):
            names = ", ".join(s["name"] for s in container["secrets"])
            self.progress(f"  warning: the task's secrets ({names}) are not available locally")
        env["PORT"] = str(self.options.api_port)
        return env

    def _prestart_api(self, workdir: Path) -> None:
        """The API's process, importing its libraries while the program deploys (it gets its
        environment and credentials from `_launch_api`)."""
        with open(workdir / "api.log", "ab") as log:
            self._api = subprocess.Popen(
                [sys.executable, "-m", "toolchain.embedded.prestart", "uvicorn"],
                stdin=subprocess.PIPE,
                env=base_process_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,
            )

    def _launch_api(self, workdir: Path) -> None:
        """`uvicorn <product.api_app>` with exactly the task's environment, in the prestarted process."""
        app = self.options.product.api_app
        if app is None:
            self.progress("no API to serve (the product names no ASGI app for its web service)")
            return
        self.progress(f"serving the API ({app}) on {self.api_url} …")
        if self._api is None:
            self._prestart_api(workdir)
        assert self._api is not None and self._api.stdin is not None
        argv = [
            app,
            "--host",
            LOOPBACK,
            "--port",
            str(self.options.api_port),
            "--no-access-log",
            "--no-server-header",
        ]
        try:
            self._api.stdin.write((json.dumps({"env": self.api_environment(), "argv": argv}) + "\n").encode())
            self._api.stdin.close()
        except BrokenPipeError:
            raise RuntimeError(
                f"the API's process exited before it started; see {workdir / 'api.log'}"
            ) from None

    def _wait_for_api(self, workdir: Path) -> None:
        if self.options.product.api_app is None:
            return
        assert self._api is not None
        deadline = time.monotonic() + 60
        while True:
            if self._api.poll() is not None:
                raise RuntimeError(f"the API exited at start-up; see {workdir / 'api.log'}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not become healthy within 60s") from None
                time.sleep(0.1)

    def iam_report(self) -> str:
        """Per role: granted vs used during the run, unused grants flagged (see iam_report.py)."""
        from toolchain.embedded.iam_report import report_text

        if self.deployment is None or self._emulator is None or self._emulator.poll() is not None:
            return "IAM report: the emulator is not running"
        try:
            return report_text(self.emulator_url, self.deployment.to_json())
        except (OSError, ValueError) as exc:
            return f"IAM report unavailable: {exc}"

    def stop(self) -> None:
        """Stop every process and thread this system started."""
        if self._deferred is not None:
            self._deferred.join(timeout=30)
        for poller in self.pollers:
            poller.stopping.set()
        if self.scheduler:
            self.scheduler.stopping.set()
        for process in (self._api,):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.fleet:
            self.fleet.stop()
        if self._zygote:
            self._zygote.close()
        if self.lambda_api:
            self.lambda_api.stop()
        for poller in self.pollers:
            poller.join(timeout=5)
        if self._emulator and self._emulator.poll() is None:
            self._emulator.terminate()
            try:
                self._emulator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._emulator.kill()
        if self.options.state_file and self.options.state_file.exists():
            try:
                state = json.loads(self.options.state_file.read_text())
                if state.get("pid") == os.getpid():
                    self.options.state_file.unlink()
            except (OSError, ValueError):
                pass

    # --- facts for tools ------------------------------------------------------------------------

    def user_pool(self) -> tuple[str, str]:
        """(user pool id, app client id) of the local Cognito pool."""
        assert self.deployment is not None
        if not self.deployment.user_pool_clients:
            raise RuntimeError("the program declares no Cognito user pool client")
        client_id, pool_id = next(iter(self.deployment.user_pool_clients.items()))
        return pool_id, client_id

    def state(self) -> dict[str, Any]:
        """What `make token`, `make demo` and tests need to find the running system."""
        assert self.deployment is not None
        pool_id, client_id = self.user_pool()
        return {
            "pid": os.getpid(),
            "region": self.region,
            "emulator": self.emulator_url,
            "api": self.api_url,
            "userPoolId": pool_id,
            "clientId": client_id,
            "lambdaApi": self.lambda_api.url if self.lambda_api else None,
            "readySeconds": round(self.ready_seconds, 2),
            "iamEnforced": True,
            "faults": {
                "awsFaultRate": self.options.aws_fault_rate,
                "crashRate": self.options.crash_rate,
                "duplicateRate": self.options.duplicate_rate,
                "faultSeed": self.options.fault_seed,
                "environmentOverrides": self.options.environment_overrides,
            },
            "deployment": self.deployment.to_json(),
        }

    def stats(self) -> dict[str, Any]:
        """What ran and what was injected so far.

        Invocations, function errors, cold starts, peak concurrent invocations and live
        environments per function; per mapping (by function) records delivered and retried and
        the peak of concurrent batches; schedules fired (and overlapping runs); crashes injected
        (and unplanned environment deaths, timeouts); duplicates injected; AWS faults injected
        (total and by service:Code); AccessDenied answers per role; whether IAM is enforced.
        """
        stats: dict[str, Any] = {
            "invocations": {},
            "functionErrors": {},
            "coldStarts": {},
            "peakConcurrency": {},
            "environments": {},
            "crashes": 0,
            "crashesByFunction": {},
            "environmentDeaths": {},
            "timeouts": {},
        }
        if self.fleet:
            stats.update(self.fleet.stats())
        stats.update(
            {
                "recordsRetried": {p.mapping.function: p.failed_records for p in self.pollers},
                "recordsDelivered": {p.mapping.function: p.delivered for p in self.pollers},
                "mappingPeakConcurrency": {p.mapping.function: p.peak_batches for p in self.pollers},
                "mappingErrors": {p.mapping.function: p.errors for p in self.pollers},
                "duplicatesInjected": sum(p.duplicates_sent for p in self.pollers),
                "schedulesFired": dict(self.scheduler.fired) if self.scheduler else {},
                "scheduleOverlaps": dict(self.scheduler.overlaps) if self.scheduler else {},
                "scheduleRetries": dict(self.scheduler.retried) if self.scheduler else {},
                "deadLettered": dict(self.scheduler.dead_lettered) if self.scheduler else {},
                "awsFaultsInjected": 0,
                "awsFaultsByCode": {},
                "accessDenied": {},
                "iamEnforced": False,
            }
        )
        if self._emulator is not None and self._emulator.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                stats.update(local_call(self.emulator_url, "/_local/stats", timeout=5))
        return stats

    def _write_state(self) -> None:
        if self.options.state_file:
            self.options.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.options.state_file.write_text(json.dumps(self.state(), indent=2))

    def emulator_pid(self) -> int | None:
        """The emulator's process id (benchmarks read its CPU), None when it is not running."""
        return self._emulator.pid if self._emulator is not None else None

    def aws_calls(self, reset: bool = False) -> dict[str, int]:
        """AWS API calls the emulator served (by service:Action)."""
        return dict(read_calls(self.emulator_url, reset=reset))

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator."""
        return emulator_client(service, self.emulator_url, self.region)


_AWS_JWKS = re.compile(
    r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/(?P<pool>[^/]+)/\.well-known/jwks\.json$"
)


def _to_emulator(value: str, emulator_url: str) -> str:
    """Point an AWS service URL in the environment at the emulator (only Cognito's JWKS is fetched
    by URL; every SDK call already goes to AWS_ENDPOINT_URL)."""
    match = _AWS_JWKS.match(value)
    return f"{emulator_url}/{match['pool']}/.well-known/jwks.json" if match else value


def fault_summary(options: SystemOptions) -> str:
    """The fault knobs of a run, as `make run` takes them."""
    knobs = [
        f"AWS_FAULT_RATE={options.aws_fault_rate:g}",
        f"CRASH_RATE={options.crash_rate:g}",
        f"DUPLICATE_RATE={options.duplicate_rate:g}",
        f"FAULT_SEED={options.fault_seed}",
    ]
    overrides = " ".join(f"{k}={v}" for k, v in sorted(options.environment_overrides.items()))
    if options.product.environment_overrides:
        overrides = (
            overrides or f"{', '.join(options.product.environment_overrides)} as the stack configures them"
        )
    return f"{' '.join(knobs)}; {overrides}" if overrides else " ".join(knobs)


def banner(system: LocalSystem) -> str:
    """The ready banner `make run` prints."""
    assert system.deployment is not None
    product = system.options.product
    functions = ", ".join(sorted(system.deployment.functions))
    cap = system.options.mapping_concurrency_cap
    concurrency = ", ".join(
        f"{m.function.removesuffix('-function')} {mapping_concurrency(m, cap)}"
        for m in system.deployment.mappings
    )
    return "\n".join(
        [
            "",
            f"{product.title} is running locally (ready in {system.ready_seconds:.1f}s)",
            *(
                [
                    f"  API           {system.api_url}      try: curl {system.api_url}{product.try_path}",
                    f"  API docs      {system.api_url}/docs",
                ]
                if product.api_app
                else []
            ),
            f"  AWS emulator  {system.emulator_url}      (moto; AWS_ENDPOINT_URL={system.emulator_url})",
            f"  functions     {functions}",
            f"  concurrency   batches at once per queue: {concurrency}",
            "  IAM           enforced: each function, its queue poller and the API call AWS as their own "
            "role; a missing grant fails with AccessDenied in .run/<function>.log",
            f"  faults        {fault_summary(system.options)}",
            *product.hints,
            "Ctrl-C stops everything (and prints the IAM report: grants used and unused per role).",
            "",
        ]
    )


def run_forever(options: SystemOptions) -> int:
    """`make run`: start, print the banner, wait for Ctrl-C or SIGTERM, stop."""
    system = LocalSystem(options, progress=lambda line: print(line, flush=True))
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        system.start()
        print(banner(system), flush=True)
        while not stop_requested:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        system.stop()
        return 1
    print("stopping …", flush=True)
    print(system.iam_report(), flush=True)
    system.stop()
    print("stopped; nothing left running.", flush=True)
    return 0
