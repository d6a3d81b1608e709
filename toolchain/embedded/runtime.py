"""Drive the declared Lambda functions the way AWS does, against the emulator.

- `Fleet` runs each function in a pool of execution environments: worker processes
  (`toolchain.embedded.worker`) from the function's packaged archive, with exactly its declared
  environment plus what Lambda sets, and the credentials of its own execution role (an STS
  session assumed on the emulator, `RoleSession`). An environment serves one invocation at a
  time; a busy pool starts another one on demand (a cold start) up to the function's limit
  (its reserved concurrency, else `FUNCTION_CONCURRENCY`) and reuses idle ones. An environment
  that dies mid-invocation (`CRASH_RATE`, or a crash of the function) is reported as Lambda
  reports it (Runtime.ExitError) and replaced; one that runs past its timeout is killed
  (Sandbox.Timedout).
- `LambdaApi` answers the Lambda Invoke API on 127.0.0.1, so `boto3.client("lambda").invoke`
  inside a function (the payment processor calling the gateway) reaches the right pool. It
  checks `lambda:InvokeFunction` for the caller's role (through the emulator's gatekeeper, which
  may also inject a fault) and serves up to `INVOKE_CONCURRENCY` concurrent calls per function,
  each in its own environment (more wait for a free one).
- `QueuePoller` is an SQS event source mapping: up to its ScalingConfig maximum concurrency (at
  least 2; `DEFAULT_MAPPING_CONCURRENCY` when the program sets none) receive-invoke-delete
  loops, each batch in its own environment, so batches of one queue race as on AWS. It scales
  out while batches keep coming and back in when the queue is empty (an idle mapping costs one
  long poll at a time). Batch size, batching window, partial batch responses; failed records
  come back after the visibility timeout (compressed by the time scale), so the queue's redrive
  moves them to the DLQ after maxReceiveCount receives, as SQS does. The poller calls SQS with
  its own session of the function's role (AWS's pollers use the execution role too); faults are
  never injected into it.
- `Scheduler` fires EventBridge `rate(...)`/`cron(...)` schedules on a compressed clock, on time
  even while the previous run is still going (so runs overlap when one is longer than the
  period, as on AWS). Each firing is an asynchronous invocation: a failed one is retried twice
  (after 1 and 2 minutes, compressed), then its event goes to the function's dead-letter queue,
  sent with the function's role as Lambda does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from toolchain.embedded.awswire import Rendered
from toolchain.embedded.emulator import boto3_session, local_call
from toolchain.embedded.faults import CRASH_HEADER, CrashPlanner, crash_point_label
from toolchain.embedded.mocks import LocalDeployment, LocalFunction, LocalMapping, LocalSchedule
from toolchain.embedded.zygote import Zygote

LOOPBACK = "127.0.0.1"
ACCOUNT_ID = "123456789012"
IDLE_WAIT_SECONDS = 2
"""Long-poll wait of an idle event source mapping (Lambda uses 20 s; shorter stops faster)."""
DEFAULT_MAPPING_CONCURRENCY = 4
"""Concurrent batches of a mapping whose program sets no ScalingConfig (AWS scales further; a
laptop with two cores does not need to)."""
MIN_MAPPING_CONCURRENCY = 2
"""AWS's floor for ScalingConfig maximumConcurrency."""
INVOKE_CONCURRENCY = 8
"""Concurrent Invoke API calls served per function; more wait for a free environment."""
FUNCTION_CONCURRENCY = 16
"""Execution environments per function when the program reserves no concurrency (the local
stand-in for the account's concurrency limit)."""
START_TIMEOUT_SECONDS = 60
ERROR_LOG_INTERVAL_SECONDS = 30.0
"""An event source mapping logs the same error at most this often."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def base_process_environment() -> dict[str, str]:
    """The parent's environment without AWS settings (nothing may leak to real AWS)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_"))}
    keep["PYTHONUNBUFFERED"] = "1"
    return keep


# --- credentials --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleSession:
    """Credentials from STS AssumeRole of one role, on the emulator."""

    role_arn: str
    kind: str
    """`function` (an execution environment), `api` (the ECS task), `poller` (an event source
    mapping): the emulator injects AWS faults into `function` and `api` sessions only."""
    label: str
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self, endpoint_url: str, region: str) -> dict[str, str]:
        """The variables a process needs to call the emulator as this session."""
        return {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }

    def client(self, service: str, endpoint_url: str, region: str, config: Any = None) -> Any:
        """A boto3 client signed with this session's credentials."""
        session = boto3_session(region, self.access_key_id, self.secret_access_key, self.session_token)
        return session.client(service, endpoint_url=endpoint_url, config=config)


_SESSION_NAME = re.compile(r"[^\w+=,.@-]")


def assume_role(sts: Any, endpoint_url: str, role_arn: str, kind: str, label: str) -> RoleSession:
    """AssumeRole `role_arn` (the runner plays the service principal) and register the session."""
    name = _SESSION_NAME.sub("-", f"{kind}-{label}")[:64]
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=name, DurationSeconds=43200)[
        "Credentials"
    ]
    session = RoleSession(
        role_arn=role_arn,
        kind=kind,
        label=label,
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
    local_call(
        endpoint_url, "/_local/sessions", {"accessKeyId": session.access_key_id, "kind": kind, "label": label}
    )
    return session


# --- logs ---------------------------------------------------------------------------------------


class FunctionLog:
    """Lines the runtime itself writes into a function's log (crashes, mapping errors)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def write(self, line: str) -> None:
        """Append one line (the workers append to the same file)."""
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line.rstrip("\n") + "\n")

    def write_throttled(self, key: str, line: str) -> None:
        """Append `line` unless the same `key` was written in the last ERROR_LOG_INTERVAL_SECONDS."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -math.inf) < ERROR_LOG_INTERVAL_SECONDS:
                return
            self._last[key] = now
        self.write(line)


# --- execution environments ---------------------------------------------------------------------


class EnvironmentStartError(RuntimeError):
    """A worker process did not come up (its log says why)."""


class ProcessHandle(Protocol):
    """What the fleet needs of a process: a `subprocess.Popen` or a `zygote.ForkedProcess`."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...


@dataclass
class Environment:
    """One execution environment: a worker process serving one invocation at a time."""

    function: str
    ordinal: int
    port: int
    process: ProcessHandle
    started: float = field(default_factory=time.monotonic)

    def wait_ready(self, deadline: float, log: Path) -> None:
        """Block until the worker answers (or raise with where to look)."""
        while True:
            if self.process.poll() is not None:
                raise EnvironmentStartError(
                    f"function {self.function}: worker exited at start-up (status "
                    f"{self.process.returncode}); see {log}"
                )
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    self.kill()
                    raise EnvironmentStartError(
                        f"function {self.function}: worker did not start within {START_TIMEOUT_SECONDS}s; "
                        f"see {log}"
                    ) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """Stop the process now."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class FunctionPool:
    """A function's execution environments: reuse an idle one, else start one, up to `limit`."""

    def __init__(self, function: str, limit: int, spawn: Callable[[int], Environment]) -> None:
        self.function = function
        self.limit = limit
        self._spawn = spawn
        self._idle: list[Environment] = []
        self._count = 0
        self._ordinal = 0
        self._cond = threading.Condition()
        self.cold_starts = 0

    def add(self, environment: Environment) -> None:
        """An environment started outside `acquire` (the one started at start-up)."""
        with self._cond:
            self._count += 1
            self._ordinal = max(self._ordinal, environment.ordinal + 1)
            self._idle.append(environment)
            self._cond.notify()

    def next_ordinal(self) -> int:
        """A fresh environment number (names its code directory)."""
        with self._cond:
            self._ordinal += 1
            return self._ordinal - 1

    def acquire(self) -> tuple[Environment, bool]:
        """(an environment for one invocation, whether it was a cold start)."""
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop(), False  # the most recently used: warm caches
                if self._count < self.limit:
                    self._count += 1
                    ordinal = self._ordinal
                    self._ordinal += 1
                    break
                self._cond.wait()
        try:
            environment = self._spawn(ordinal)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.cold_starts += 1
        return environment, True

    def release(self, environment: Environment, alive: bool) -> None:
        """Give an environment back (or forget a dead one, so the next caller starts a new one)."""
        with self._cond:
            if alive:
                self._idle.append(environment)
            else:
                self._count -= 1
            self._cond.notify()

    @property
    def size(self) -> int:
        """Environments alive (idle or busy)."""
        with self._cond:
            return self._count

    def stop(self) -> list[Environment]:
        """Forget every idle environment (busy ones are killed by the fleet)."""
        with self._cond:
            idle, self._idle = self._idle, []
            return idle


def _exit_description(returncode: int | None) -> str:
    if returncode is None:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        import signal

        name = (signal.strsignal(-returncode) or str(-returncode)).lower()  # "killed", as Lambda says
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {returncode}"


class Fleet:
    """Every declared function, each in its pool of execution environments."""

    def __init__(
        self,
        deployment: LocalDeployment,
        endpoint_url: str,
        lambda_api_url: str,
        workdir: Path,
        overrides: Mapping[str, str] | None = None,
        sessions: Mapping[str, RoleSession] | None = None,
        crashes: CrashPlanner | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        self.deployment = deployment
        self.endpoint_url = endpoint_url
        self.lambda_api_url = lambda_api_url
        self.workdir = workdir
        self.overrides = dict(overrides or {})
        self.sessions = dict(sessions or {})
        self.crashes = crashes or CrashPlanner()
        self.zygote = zygote
        """Forks environments with the libraries preloaded; without it each is a fresh process."""
        self.pools: dict[str, FunctionPool] = {}
        self.logs: dict[str, FunctionLog] = {}
        self._lock = threading.Lock()
        self._busy: dict[int, Environment] = {}
        self._stopping = False
        self.invocations: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.crashes_injected: Counter[str] = Counter()
        self.deaths: Counter[str] = Counter()
        """Environments that died mid-invocation without an injected crash."""
        self.timeouts: Counter[str] = Counter()

    def environment_for(self, function: LocalFunction) -> dict[str, str]:
        """Declared environment + what the Lambda service sets + the role's credentials."""
        env = base_process_environment()
        session = self.sessions.get(function.name)
        if session is not None:
            env.update(session.environment(self.endpoint_url, self.deployment.region))
        else:  # no role to assume (a program without IAM): the function gets no credentials
            env.update({"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.deployment.region})
        env["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_api_url
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            }
        )
        env.update(function.environment)
        for key, value in self.overrides.items():
            if key in function.environment:
                env[key] = value
        return env

    def log_path(self, name: str) -> Path:
        """`.run/<function>.log`: every environment of the function appends to it."""
        return self.workdir / f"{name}.log"

    def _launch(self, function: LocalFunction, ordinal: int) -> Environment:
        port = free_port()
        argv = [
            "--name",
            function.name,
            "--archive",
            function.archive,
            "--handler",
            function.handler,
            "--port",
            str(port),
            "--workdir",
            str(self.workdir / "code" / function.name / str(ordinal)),
            "--memory",
            str(function.memory),
            "--timeout",
            str(function.timeout),
            "--region",
            self.deployment.region,
        ]
        env = self.environment_for(function)
        log_path = self.log_path(function.name)
        if self.zygote is not None and self.zygote.alive:
            with contextlib.suppress(OSError):  # the fork server is gone: start a process instead
                forked = self.zygote.spawn(argv, env, self.workdir, log_path)
                return Environment(function.name, ordinal, port, forked)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "toolchain.embedded.worker", *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C reaches the runner only, which stops everything in order
            )
        return Environment(function.name, ordinal, port, process)

    def _spawn(self, function: LocalFunction) -> Callable[[int], Environment]:
        def spawn(ordinal: int) -> Environment:
            if self._stopping:
                raise EnvironmentStartError(f"function {function.name}: the system is stopping")
            environment = self._launch(function, ordinal)
            environment.wait_ready(time.monotonic() + START_TIMEOUT_SECONDS, self.log_path(function.name))
            return environment

        return spawn

    def start(self) -> None:
        """Start one environment per function, all in parallel, and wait until each answers."""
        launched = []
        for function in self.deployment.functions.values():
            if not function.archive or not Path(function.archive).exists():
                raise FileNotFoundError(f"function {function.name}: archive {function.archive!r} not found")
            limit = function.reserved_concurrency or FUNCTION_CONCURRENCY
            if limit <= 0:
                raise RuntimeError(
                    f"function {function.name}: reserved concurrency {limit} means it can never run"
                )
            pool = FunctionPool(function.name, limit, self._spawn(function))
            self.pools[function.name] = pool
            self.logs[function.name] = FunctionLog(self.log_path(function.name))
            launched.append((pool, self._launch(function, pool.next_ordinal())))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for pool, environment in launched:
            environment.wait_ready(deadline, self.log_path(pool.function))
            pool.add(environment)

    def resolve(self, name_or_arn: str) -> LocalFunction:
        """A function by name, ARN or qualified ARN."""
        name = name_or_arn
        if name.startswith("arn:"):
            name = name.split(":function:", 1)[1].split(":", 1)[0]
        function = self.deployment.functions.get(name)
        if function is None:
            raise KeyError(f"no function named {name!r}")
        return function

    def invoke(self, name_or_arn: str, event: Any) -> tuple[Any, bool]:
        """Run one invocation in an environment of the function's pool; (payload, function_error).

        Never raises for what happens inside the environment: a crash, a timeout or a failed
        cold start comes back as Lambda reports it (an error payload, function_error True).
        """
        function = self.resolve(name_or_arn)
        pool = self.pools[function.name]
        request_id = str(uuid.uuid4())
        with self._lock:
            self.invocations[function.name] += 1
        try:
            environment, _cold = pool.acquire()
        except EnvironmentStartError as exc:
            with self._lock:
                self.errors[function.name] += 1
            return {"errorMessage": str(exc), "errorType": "Runtime.Unknown"}, True
        with self._lock:
            self.in_flight[function.name] += 1
            self.peak[function.name] = max(self.peak[function.name], self.in_flight[function.name])
            self._busy[id(environment)] = environment
        crash = self.crashes.plan(function.name)
        alive = True
        try:
            payload, error, alive = self._call(function, environment, request_id, event, crash)
        finally:
            with self._lock:
                self.in_flight[function.name] -= 1
                self._busy.pop(id(environment), None)
                if error:
                    self.errors[function.name] += 1
            pool.release(environment, alive)
        return payload, error

    def _call(
        self,
        function: LocalFunction,
        environment: Environment,
        request_id: str,
        event: Any,
        crash: str | None,
    ) -> tuple[Any, bool, bool]:
        """(payload, function_error, environment still alive)."""
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{environment.port}/invoke", data=json.dumps(event).encode(), method="POST"
        )
        request.add_header("Lambda-Runtime-Aws-Request-Id", request_id)
        if crash is not None:
            request.add_header(CRASH_HEADER, crash)
        try:
            with urllib.request.urlopen(request, timeout=function.timeout + 1) as response:
                payload = json.loads(response.read() or b"null")
                return payload, response.headers.get("X-Amz-Function-Error") is not None, True
        except TimeoutError:
            environment.kill()
            with self._lock:
                self.timeouts[function.name] += 1
            message = f"RequestId: {request_id} Error: Task timed out after {function.timeout:.2f} seconds"
            self.logs[function.name].write(f"{datetime.now(UTC).isoformat()} {message}")
            return {"errorMessage": message, "errorType": "Sandbox.Timedout"}, True, False
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException, OSError):
            pass
        # The environment went away mid-invocation: as Lambda, report its exit and replace it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            environment.process.wait(timeout=5)
        if environment.process.poll() is None:
            environment.kill()
        exit_text = _exit_description(environment.process.returncode)
        with self._lock:
            if crash is not None:
                self.crashes_injected[function.name] += 1
            else:
                self.deaths[function.name] += 1
        where = f" (CRASH_RATE: killed {crash_point_label(crash)})" if crash is not None else ""
        self.logs[function.name].write(
            f"{datetime.now(UTC).isoformat()} RequestId: {request_id} Error: {exit_text}{where}\n"
            "Runtime.ExitError"
        )
        return (
            {"errorMessage": f"RequestId: {request_id} Error: {exit_text}", "errorType": "Runtime.ExitError"},
            True,
            False,
        )

    def stats(self) -> dict[str, Any]:
        """Invocations, errors, cold starts, peak concurrency, environments, crashes, timeouts."""
        with self._lock:
            return {
                "invocations": dict(self.invocations),
                "functionErrors": dict(self.errors),
                "coldStarts": {name: pool.cold_starts for name, pool in self.pools.items()},
                "peakConcurrency": dict(self.peak),
                "environments": {name: pool.size for name, pool in self.pools.items()},
                "crashes": sum(self.crashes_injected.values()),
                "crashesByFunction": dict(self.crashes_injected),
                "environmentDeaths": dict(self.deaths),
                "timeouts": dict(self.timeouts),
            }

    def stop(self) -> None:
        """Terminate every environment."""
        self._stopping = True
        environments: list[Environment] = []
        for pool in self.pools.values():
            environments += pool.stop()
        with self._lock:
            environments += list(self._busy.values())
        for environment in environments:
            if environment.process.poll() is None:
                environment.process.terminate()
        for environment in environments:
            try:
                environment.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                environment.process.kill()


# --- the Lambda Invoke API ----------------------------------------------------------------------

Authorizer = Callable[[str, str, str, dict[str, str], bytes, str, str], Rendered | None]
"""(method, path, query, headers, body, action, resource) → a rendered refusal, or None."""


def emulator_authorizer(endpoint_url: str) -> Authorizer:
    """Screen Invoke API requests through the emulator's gatekeeper (IAM, faults)."""
    import base64

    def authorize(
        method: str, path: str, query: str, headers: dict[str, str], body: bytes, action: str, resource: str
    ) -> Rendered | None:
        answer = local_call(
            endpoint_url,
            "/_local/authorize",
            {
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                "body": base64.b64encode(body).decode(),
                "action": action,
                "resource": resource,
            },
        )
        if not answer.get("refused"):
            return None
        return (
            int(answer["status"]),
            [(str(k), str(v)) for k, v in answer["headers"]],
            base64.b64decode(answer["body"]),
        )

    return authorize


class LambdaApi:
    """The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) on 127.0.0.1."""

    _PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations")

    def __init__(self, port: int) -> None:
        self.port = port
        self.fleet: Fleet | None = None
        self.authorize: Authorizer | None = None
        self.stats_provider: Callable[[], dict[str, Any]] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL to use as AWS_ENDPOINT_URL_LAMBDA."""
        return f"http://{LOOPBACK}:{self.port}"

    def slots(self, function: str) -> threading.BoundedSemaphore:
        """The per-function cap on concurrent Invoke API calls."""
        with self._slots_lock:
            if function not in self._slots:
                self._slots[function] = threading.BoundedSemaphore(INVOKE_CONCURRENCY)
            return self._slots[function]

    def _invoke(self, function: str, event: Any) -> tuple[Any, bool]:
        assert self.fleet is not None
        with self.slots(function):
            return self.fleet.invoke(function, event)

    def start(self) -> None:
        """Serve in a background thread."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.startswith("/_local/stats") and api.stats_provider is not None:
                    self._send(200, api.stats_provider(), {})
                else:
                    self._send(404, {"Type": "User", "message": f"unknown path {self.path}"}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                match = LambdaApi._PATH.match(path)
                if not match or api.fleet is None:
                    self._send(404, {"Type": "User", "message": f"unknown path {self.path}"}, {})
                    return
                name = urllib.parse.unquote(match.group("name"))
                try:
                    function = api.fleet.resolve(name)
                except KeyError:
                    self._send(
                        404,
                        {"Type": "User", "message": f"Function not found: {name}"},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                if api.authorize is not None:
                    refusal = api.authorize(
                        "POST",
                        path,
                        query,
                        dict(self.headers.items()),
                        raw,
                        "lambda:InvokeFunction",
                        function.arn,
                    )
                    if refusal is not None:
                        status, headers, body = refusal
                        self._send_raw(status, headers, body)
                        return
                try:
                    event = json.loads(raw or b"{}")
                except ValueError:
                    self._send(
                        400,
                        {"Type": "User", "message": "Could not parse request body into json"},
                        {"x-amzn-ErrorType": "InvalidRequestContentException"},
                    )
                    return
                if self.headers.get("X-Amz-Invocation-Type") == "Event":
                    threading.Thread(target=api._invoke, args=(function.name, event), daemon=True).start()
                    self._send(202, None, {})
                    return
                payload, error = api._invoke(function.name, event)
                answer_headers = {"X-Amz-Executed-Version": "$LATEST"}
                if error:
                    answer_headers["X-Amz-Function-Error"] = "Unhandled"
                self._send(200, payload, answer_headers)

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self._send_raw(status, [("Content-Type", "application/json"), *headers.items()], body)

            def _send_raw(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers:
                        if key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The caller went away (its environment was killed, or it timed out): as on
                    # AWS, the invocation ran all the same; there is nobody to answer.
                    self.close_connection = True

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()


# --- event source mappings ----------------------------------------------------------------------


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to a function."""
    attributes = {k: v for k, v in (message.get("Attributes") or {}).items()}
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        message_attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def mapping_concurrency(mapping: LocalMapping, cap: int | None = None) -> int:
    """Concurrent batches of a mapping: its ScalingConfig maximum (at least 2), else the local
    default; at most `cap` when given (MAPPING_CONCURRENCY_CAP: a small machine runs every
    batch on the same cores, so more batches at once only queue for them), never below 2."""
    wanted = (
        DEFAULT_MAPPING_CONCURRENCY
        if mapping.maximum_concurrency is None
        else max(MIN_MAPPING_CONCURRENCY, int(mapping.maximum_concurrency))
    )
    if cap is not None:
        wanted = min(wanted, max(MIN_MAPPING_CONCURRENCY, cap))
    return wanted


class QueuePoller(threading.Thread):
    """One SQS event source mapping: up to `concurrency` receive-invoke-delete loops ("lanes")."""

    def __init__(
        self,
        mapping: LocalMapping,
        queue_url: str,
        visibility_timeout: int,
        fleet: Fleet,
        sqs: Any,
        region: str,
        time_scale: float,
        duplicate_rate: float = 0.0,
        seed: int | None = None,
        *,
        runner_sqs: Any = None,
        log: FunctionLog | None = None,
        concurrency_cap: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"poller-{mapping.function}")
        self.mapping = mapping
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.fleet = fleet
        self.sqs = sqs
        """The mapping's own session of the function's role."""
        self.runner_sqs = runner_sqs or sqs
        """Used only to inject duplicate deliveries (a runtime fault, not the mapping's call)."""
        self.region = region
        self.time_scale = time_scale
        self.duplicate_rate = duplicate_rate
        self.random = random.Random(seed)
        self.log = log
        self.concurrency = mapping_concurrency(mapping, concurrency_cap)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._lanes = 1
        self._polling = 0
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self.delivered = 0
        self.failed_records = 0
        self.duplicates_sent = 0
        self.batches = 0
        self.peak_batches = 0
        """Most batches of this mapping in flight at once."""
        self.errors = 0

    def _retry_after(self) -> int:
        """Seconds before a failed record is visible again (the visibility timeout, compressed)."""
        return max(1, round(self.visibility_timeout / self.time_scale))

    def _collect(self) -> list[dict[str, Any]]:
        """Receive up to batch size, waiting at most the batching window, with long polls.

        The window runs in real time, not on the compressed clock: it shapes batches (and so the
        number of calls per message), and compressing it would make every batch tiny. Like the
        Lambda service, it long-polls: an idle queue costs one ReceiveMessage per IDLE_WAIT.
        """
        wanted = self.mapping.batch_size
        deadline: float | None = None
        messages: list[dict[str, Any]] = []
        while len(messages) < wanted and not self.stopping.is_set():
            if messages:
                assert deadline is not None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(20, math.ceil(remaining))
            else:
                wait = IDLE_WAIT_SECONDS
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            if not batch:
                break
            if not messages:
                deadline = time.monotonic() + float(self.mapping.batching_window)
            messages.extend(batch)
        return messages

    def run(self) -> None:
        self._lane(permanent=True)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _lane(self, permanent: bool) -> None:
        try:
            while not self.stopping.is_set():
                with self._lock:
                    self._polling += 1
                try:
                    messages = self._collect()
                except Exception as exc:
                    if self.stopping.is_set():
                        return
                    self._report(exc)
                    time.sleep(1.0)
                    continue
                finally:
                    with self._lock:
                        self._polling -= 1
                if not messages:
                    if permanent:
                        continue
                    return  # the queue is drained: scale back in
                self._scale_out()
                with self._lock:
                    self._busy += 1
                    self.batches += 1
                    self.peak_batches = max(self.peak_batches, self._busy)
                try:
                    self._process(messages)
                except Exception as exc:  # the records come back after their visibility timeout
                    self._report(exc)
                finally:
                    with self._lock:
                        self._busy -= 1
        finally:
            if not permanent:
                with self._lock:
                    self._lanes -= 1

    def _scale_out(self) -> None:
        """Messages are flowing and no lane is waiting for more: start another, up to the maximum."""
        with self._lock:
            if self._polling > 0 or self._lanes >= self.concurrency or self.stopping.is_set():
                return
            self._lanes += 1
            thread = threading.Thread(
                target=self._lane, args=(False,), daemon=True, name=f"{self.name}-{self._lanes}"
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _report(self, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
        if self.log is not None:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.log.write_throttled(
                text,
                f"{datetime.now(UTC).isoformat()} [event source mapping {self.mapping.queue_arn}] "
                f"{type(exc).__name__}: {text}",
            )

    def _process(self, messages: list[dict[str, Any]]) -> None:
        records = [_sqs_record(m, self.mapping.queue_arn, self.region) for m in messages]
        failed: set[str]
        payload, error = self.fleet.invoke(self.mapping.function, {"Records": records})
        if error:
            failed = {r["messageId"] for r in records}
        elif self.mapping.report_batch_item_failures and isinstance(payload, dict):
            failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures") or []}
        else:
            failed = set()
        with self._lock:
            self.delivered += len(records)
            self.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        retry_after = self._retry_after()
        for message in messages:
            if message["MessageId"] in failed:
                with contextlib.suppress(Exception):
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=retry_after,
                    )
        if self.duplicate_rate:
            for message in done:
                with self._lock:
                    duplicate = self.random.random() < self.duplicate_rate
                if duplicate:
                    self._redeliver(message)

    def _redeliver(self, message: dict[str, Any]) -> None:
        """At-least-once delivery: put an identical copy back on the queue."""
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        self.runner_sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=message["Body"], MessageAttributes=attributes
        )
        with self._lock:
            self.duplicates_sent += 1


# --- schedules ----------------------------------------------------------------------------------

_RATE = re.compile(r"^rate\((?P<n>\d+)\s+(?P<unit>minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period(expression: str) -> float:
    """Seconds between firings of `rate(...)`; `cron(...)` is approximated as every minute."""
    match = _RATE.match(expression.strip())
    if match:
        return int(match["n"]) * _UNIT_SECONDS[match["unit"].rstrip("s")]
    if expression.startswith("cron("):
        return 60.0
    raise ValueError(f"unsupported schedule expression {expression!r}")


ASYNC_RETRY_DELAYS_SECONDS = (60, 120)
"""Lambda retries a failed asynchronous invocation twice: after one minute, then two."""

DeadLetter = Callable[[LocalFunction, Any, Any], None]
"""(function, event, error payload) → send the event to the function's dead-letter target."""


class Scheduler(threading.Thread):
    """Fires scheduled functions on a compressed clock (period ÷ time scale), overlapping runs."""

    def __init__(
        self,
        schedules: list[LocalSchedule],
        fleet: Fleet,
        region: str,
        time_scale: float,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        super().__init__(daemon=True, name="scheduler")
        self.schedules = [s for s in schedules if s.function_arn]
        self.fleet = fleet
        self.region = region
        self.time_scale = time_scale
        self.dead_letter = dead_letter
        self.stopping = threading.Event()
        self.fired: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.dead_lettered: Counter[str] = Counter()
        self.overlaps: Counter[str] = Counter()
        """Firings that started while the same schedule's previous run was still going."""
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    def event_for(self, schedule: LocalSchedule) -> Any:
        """The event EventBridge sends (or the target's constant input)."""
        if schedule.input:
            return json.loads(schedule.input)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{schedule.rule}"],
            "detail": {},
        }

    def fire(self, schedule: LocalSchedule) -> None:
        """One asynchronous invocation of the schedule's function: retried twice on a function
        error, then dead-lettered (errors are counted on the fleet)."""
        assert schedule.function_arn is not None
        with self._lock:
            self.fired[schedule.rule] += 1
            if self._running[schedule.rule]:
                self.overlaps[schedule.rule] += 1
            self._running[schedule.rule] += 1
        event = self.event_for(schedule)
        try:
            payload, error = self.fleet.invoke(schedule.function_arn, event)
            for delay in ASYNC_RETRY_DELAYS_SECONDS:
                if not error or self.stopping.wait(delay / self.time_scale):
                    break
                with self._lock:
                    self.retried[schedule.rule] += 1
                payload, error = self.fleet.invoke(schedule.function_arn, event)
            if error and not self.stopping.is_set() and self.dead_letter is not None:
                function = self.fleet.resolve(schedule.function_arn)
                if function.dead_letter_arn:
                    with self._lock:
                        self.dead_lettered[schedule.rule] += 1
                    self.dead_letter(function, event, payload)
        finally:
            with self._lock:
                self._running[schedule.rule] -= 1

    def run(self) -> None:
        next_due = {
            s.rule: time.monotonic() + schedule_period(s.expression) / self.time_scale for s in self.schedules
        }
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for schedule in self.schedules:
                if now >= next_due[schedule.rule]:
                    next_due[schedule.rule] = now + schedule_period(schedule.expression) / self.time_scale
                    # EventBridge fires on time whether or not the previous run has finished.
                    threading.Thread(
                        target=self.fire, args=(schedule,), daemon=True, name=f"schedule-{schedule.rule}"
                    ).start()


def queue_visibility(sqs: Any, url: str) -> int:
    """A queue's visibility timeout, read back from the emulator."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    return int(attributes.get("VisibilityTimeout", 30))
