"""Start and stop the whole system on one machine: emulator, program, functions, API.

Used by `make run` (`python -m infra.local`), by `make demo`, by the end-to-end tests and by the
benchmark, so all of them run exactly the same thing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.emulator import emulator_client, read_calls, wait_until_ready
from infra.local.mocks import EmulatorMocks, LocalDeployment
from infra.local.runtime import (
    LOOPBACK,
    Fleet,
    LambdaApi,
    QueuePoller,
    Scheduler,
    base_process_environment,
    emulator_credentials,
    free_port,
    queue_visibility,
)
from infra.synth import REPO_ROOT, Synthesis, read_stack_config, synthesize

LOCAL_STACK = "local"
STATE_FILE = REPO_ROOT / ".run" / "local.json"
GATEWAY_OVERRIDES = ("PG_TRANSIENT_FAILURE_RATE", "PG_DECLINE_RATE", "PG_LATENCY_MS", "PG_SEED")
"""Environment variables a run may set to override the stack's payment-gateway behaviour."""

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
    gateway: dict[str, str] = field(default_factory=dict)
    """Overrides of the payment gateway's PG_* settings for this run."""
    workdir: Path = REPO_ROOT / ".run"
    state_file: Path | None = STATE_FILE

    @classmethod
    def from_environment(cls) -> SystemOptions:
        """Options from EMULATOR_PORT, PORT, TIME_SCALE, DUPLICATE_RATE and PG_* variables."""

        def number(name: str, default: float, cast: Callable[[str], Any] = float) -> Any:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return cast(raw)
            except ValueError:
                raise SystemExit(f"error: {name}={raw!r} is not a valid number") from None

        return cls(
            emulator_port=number("EMULATOR_PORT", 4566, int),
            api_port=number("PORT", 8080, int),
            time_scale=number("TIME_SCALE", 60.0),
            duplicate_rate=number("DUPLICATE_RATE", 0.0),
            gateway={k: os.environ[k] for k in GATEWAY_OVERRIDES if os.environ.get(k)},
        )


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
        self.lambda_api: LambdaApi | None = None
        self.pollers: list[QueuePoller] = []
        self.scheduler: Scheduler | None = None
        self._emulator: subprocess.Popen[bytes] | None = None
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
            self._start_emulator(workdir)
            self._deploy()
            self._start_functions(workdir)
            self._start_api(workdir)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at
        self._write_state()

    def _start_emulator(self, workdir: Path) -> None:
        self.progress(f"starting the AWS emulator (moto) on {self.emulator_url} …")
        log = open(workdir / "emulator.log", "ab")  # noqa: SIM115 (lives with the process)
        self._emulator = subprocess.Popen(
            [sys.executable, "-m", "infra.local.emulator", "--port", str(self.options.emulator_port)],
            env=base_process_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until_ready(self.emulator_url)

    def _deploy(self) -> None:
        self.progress(f"running the infra program for stack '{LOCAL_STACK}' onto the emulator …")
        mocks = EmulatorMocks(self.emulator_url, self.region)
        self.synthesis = synthesize(LOCAL_STACK, mocks=mocks)
        self.deployment = mocks.deployment
        created = len(self.deployment.created)
        recorded = len(self.deployment.recorded)
        self.progress(
            f"  {created} resources created on the emulator; {recorded} with no local meaning recorded"
        )

    def _start_functions(self, workdir: Path) -> None:
        assert self.deployment is not None
        deployment = self.deployment
        self.lambda_api = LambdaApi(free_port())
        self.lambda_api.start()
        self.fleet = Fleet(deployment, self.emulator_url, self.lambda_api.url, workdir, self.options.gateway)
        self.lambda_api.fleet = self.fleet
        self.lambda_api.stats_provider = self.stats
        names = ", ".join(sorted(deployment.functions))
        self.progress(f"starting {len(deployment.functions)} functions from their archives: {names} …")
        self.fleet.start()
        sqs = emulator_client("sqs", self.emulator_url, self.region)
        for index, mapping in enumerate(deployment.mappings):
            url = deployment.queues.get(mapping.queue_arn)
            if url is None:
                raise RuntimeError(
                    f"event source mapping of {mapping.function}: no queue {mapping.queue_arn}"
                )
            poller = QueuePoller(
                mapping,
                url,
                queue_visibility(sqs, url),
                self.fleet,
                emulator_client("sqs", self.emulator_url, self.region),
                self.region,
                self.options.time_scale,
                self.options.duplicate_rate,
                None if self.options.seed is None else self.options.seed + index,
            )
            poller.start()
            self.pollers.append(poller)
        self.scheduler = Scheduler(
            list(deployment.schedules.values()), self.fleet, self.region, self.options.time_scale
        )
        self.scheduler.start()
        self.progress(
            f"  {len(self.pollers)} queue pollers and {len(self.scheduler.schedules)} schedules "
            f"running (time scale x{self.options.time_scale:g})"
        )

    def api_environment(self) -> dict[str, str]:
        """Exactly the environment the ECS task definition declares, plus the emulator endpoint."""
        assert self.deployment is not None
        containers = [
            c for c in self.deployment.containers if c.get("portMappings")
        ] or self.deployment.containers
        if not containers:
            raise RuntimeError("the program declares no ECS task definition: nothing to serve the API")
        container = containers[0]
        env = base_process_environment()
        env.update(emulator_credentials(self.emulator_url, self.region))
        for item in container.get("environment") or []:
            env[item["name"]] = _to_emulator(str(item["value"]), self.emulator_url)
        if container.get("secrets"):
            names = ", ".join(s["name"] for s in container["secrets"])
            self.progress(f"  warning: the task's secrets ({names}) are not available locally")
        env["PORT"] = str(self.options.api_port)
        return env

    def _start_api(self, workdir: Path) -> None:
        self.progress(f"serving the API (app.main:app) on {self.api_url} …")
        log = open(workdir / "api.log", "ab")  # noqa: SIM115 (lives with the process)
        self._api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                LOOPBACK,
                "--port",
                str(self.options.api_port),
                "--no-access-log",
            ],
            env=self.api_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
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
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop every process and thread this system started."""
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
            "deployment": self.deployment.to_json(),
        }

    def stats(self) -> dict[str, Any]:
        """Invocations, function errors, retried records and injected duplicates so far."""
        fleet = self.fleet
        return {
            "invocations": dict(fleet.invocations) if fleet else {},
            "functionErrors": dict(fleet.errors) if fleet else {},
            "recordsRetried": {p.mapping.function: p.failed_records for p in self.pollers},
            "recordsDelivered": {p.mapping.function: p.delivered for p in self.pollers},
            "duplicatesInjected": sum(p.duplicates_sent for p in self.pollers),
            "schedulesFired": dict(self.scheduler.fired) if self.scheduler else {},
        }

    def _write_state(self) -> None:
        if self.options.state_file:
            self.options.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.options.state_file.write_text(json.dumps(self.state(), indent=2))

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


def banner(system: LocalSystem) -> str:
    """The ready banner `make run` prints."""
    assert system.deployment is not None
    functions = ", ".join(sorted(system.deployment.functions))
    return "\n".join(
        [
            "",
            f"crowdfunding is running locally (ready in {system.ready_seconds:.1f}s)",
            f"  API           {system.api_url}      try: curl {system.api_url}/api/fundings",
            f"  API docs      {system.api_url}/docs",
            f"  AWS emulator  {system.emulator_url}      (moto; AWS_ENDPOINT_URL={system.emulator_url})",
            f"  functions     {functions}",
            "  get a token   make token USER=alice     (then: -H 'Authorization: Bearer <token>')",
            "  watch events  make demo    |    tail -f .run/*.log",
            "Ctrl-C stops everything.",
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
    system.stop()
    print("stopped; nothing left running.", flush=True)
    return 0
