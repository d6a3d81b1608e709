"""Drive the declared Lambda functions the way AWS does, against the emulator.

- `Fleet` runs each function in its own worker process (`infra.local.worker`) from its
  packaged archive with exactly its declared environment, plus what Lambda itself sets.
- `LambdaApi` answers the Lambda Invoke API on 127.0.0.1, so `boto3.client("lambda").invoke`
  inside a function (the payment processor calling the gateway) reaches the right worker.
- `QueuePoller` is an SQS event source mapping: batch size, batching window, partial batch
  responses; failed records stay on the queue and come back after the visibility timeout
  (compressed by the time scale), so moto's redrive moves them to the DLQ after
  maxReceiveCount receives, as SQS does.
- `Scheduler` fires EventBridge `rate(...)`/`cron(...)` schedules on a compressed clock.
"""

from __future__ import annotations

import contextlib
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
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.local.emulator import LOCAL_ACCESS_KEY
from infra.local.mocks import LocalDeployment, LocalFunction, LocalMapping, LocalSchedule

LOOPBACK = "127.0.0.1"
ACCOUNT_ID = "123456789012"
IDLE_WAIT_SECONDS = 2
"""Long-poll wait of an idle event source mapping (Lambda uses 20 s; shorter stops faster)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def emulator_credentials(endpoint_url: str, region: str) -> dict[str, str]:
    """The environment every local process gets so boto3 talks to the emulator only."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_ACCESS_KEY,
        "AWS_SESSION_TOKEN": LOCAL_ACCESS_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def base_process_environment() -> dict[str, str]:
    """The parent's environment without AWS settings (nothing may leak to real AWS)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_"))}
    keep["PYTHONUNBUFFERED"] = "1"
    return keep


class InvocationError(RuntimeError):
    """The worker could not be reached or the function timed out on the wire."""


class Fleet:
    """One worker process per declared function."""

    def __init__(
        self,
        deployment: LocalDeployment,
        endpoint_url: str,
        lambda_api_url: str,
        workdir: Path,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.deployment = deployment
        self.endpoint_url = endpoint_url
        self.lambda_api_url = lambda_api_url
        self.workdir = workdir
        self.overrides = dict(overrides or {})
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.invocations: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._locks: dict[str, threading.Lock] = {}

    def environment_for(self, function: LocalFunction) -> dict[str, str]:
        """Declared environment + what the Lambda service sets + emulator endpoints."""
        env = base_process_environment()
        env.update(emulator_credentials(self.endpoint_url, self.deployment.region))
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

    def start(self) -> None:
        """Start every worker and wait until each answers."""
        for function in self.deployment.functions.values():
            if not function.archive or not Path(function.archive).exists():
                raise FileNotFoundError(f"function {function.name}: archive {function.archive!r} not found")
            port = free_port()
            self.ports[function.name] = port
            self._locks[function.name] = threading.Lock()
            log = open(self.workdir / f"{function.name}.log", "ab")  # noqa: SIM115 (lives with the process)
            self.processes[function.name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "infra.local.worker",
                    "--name",
                    function.name,
                    "--archive",
                    function.archive,
                    "--handler",
                    function.handler,
                    "--port",
                    str(port),
                    "--workdir",
                    str(self.workdir / "code" / function.name),
                    "--memory",
                    str(function.memory),
                    "--timeout",
                    str(function.timeout),
                    "--region",
                    self.deployment.region,
                ],
                env=self.environment_for(function),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + 60
        for name, port in self.ports.items():
            while True:
                if self.processes[name].poll() is not None:
                    raise RuntimeError(
                        f"function {name}: worker exited; see {self.workdir / (name + '.log')}"
                    )
                try:
                    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=2):
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"function {name}: worker did not start within 60s") from None
                    time.sleep(0.1)

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
        """Run one invocation; returns (payload, function_error)."""
        function = self.resolve(name_or_arn)
        body = json.dumps(event).encode()
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.ports[function.name]}/invoke", data=body, method="POST"
        )
        with self._locks[function.name]:  # one execution environment: one invocation at a time
            self.invocations[function.name] += 1
            try:
                with urllib.request.urlopen(request, timeout=function.timeout + 30) as response:
                    payload = json.loads(response.read() or b"null")
                    error = response.headers.get("X-Amz-Function-Error") is not None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                self.errors[function.name] += 1
                raise InvocationError(f"function {function.name}: {exc}") from exc
        if error:
            self.errors[function.name] += 1
        return payload, error

    def stop(self) -> None:
        """Terminate every worker."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


class LambdaApi:
    """The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) on 127.0.0.1."""

    _PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations")

    def __init__(self, port: int) -> None:
        self.port = port
        self.fleet: Fleet | None = None
        self.stats_provider: Callable[[], dict[str, Any]] | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL to use as AWS_ENDPOINT_URL_LAMBDA."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.startswith("/_local/stats") and api.stats_provider is not None:
                    self._send(200, api.stats_provider(), {})
                else:
                    self._send(404, {"Type": "User", "message": f"unknown path {self.path}"}, {})

            def do_POST(self) -> None:
                match = LambdaApi._PATH.match(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not match or api.fleet is None:
                    self._send(404, {"Type": "User", "message": f"unknown path {self.path}"}, {})
                    return
                name = urllib.parse.unquote(match.group("name"))
                try:
                    event = json.loads(raw or b"{}")
                    function = api.fleet.resolve(name)
                except KeyError:
                    message = f"Function not found: {name}"
                    self._send(
                        404,
                        {"Type": "User", "message": message},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                except ValueError:
                    self._send(400, {"Type": "User", "message": "payload is not JSON"}, {})
                    return
                if self.headers.get("X-Amz-Invocation-Type") == "Event":
                    threading.Thread(
                        target=api.fleet.invoke, args=(function.name, event), daemon=True
                    ).start()
                    self._send(202, None, {})
                    return
                try:
                    payload, error = api.fleet.invoke(function.name, event)
                except InvocationError as exc:
                    self._send(502, {"Type": "Service", "message": str(exc)}, {})
                    return
                headers = {"X-Amz-Executed-Version": "$LATEST"}
                if error:
                    headers["X-Amz-Function-Error"] = "Unhandled"
                self._send(200, payload, headers)

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server:
            self._server.shutdown()


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


class QueuePoller(threading.Thread):
    """One SQS event source mapping."""

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
    ) -> None:
        super().__init__(daemon=True, name=f"poller-{mapping.function}")
        self.mapping = mapping
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.fleet = fleet
        self.sqs = sqs
        self.region = region
        self.time_scale = time_scale
        self.duplicate_rate = duplicate_rate
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.delivered = 0
        self.failed_records = 0
        self.duplicates_sent = 0

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
        while not self.stopping.is_set():
            try:
                messages = self._collect()
            except Exception:  # emulator going away at shutdown
                if self.stopping.is_set():
                    return
                time.sleep(0.5)
                continue
            if not messages:
                continue
            records = [_sqs_record(m, self.mapping.queue_arn, self.region) for m in messages]
            failed: set[str]
            try:
                payload, error = self.fleet.invoke(self.mapping.function, {"Records": records})
            except InvocationError:
                payload, error = None, True
            if error:
                failed = {r["messageId"] for r in records}
            elif self.mapping.report_batch_item_failures and isinstance(payload, dict):
                failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures") or []}
            else:
                failed = set()
            self.delivered += len(records)
            self.failed_records += len(failed)
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                chunk = done[start : start + 10]
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                    ],
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
                    if self.random.random() < self.duplicate_rate:
                        self._redeliver(message)

    def _redeliver(self, message: dict[str, Any]) -> None:
        """At-least-once delivery: put an identical copy back on the queue."""
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=message["Body"], MessageAttributes=attributes
        )
        self.duplicates_sent += 1


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


class Scheduler(threading.Thread):
    """Fires scheduled functions on a compressed clock (period ÷ time scale)."""

    def __init__(self, schedules: list[LocalSchedule], fleet: Fleet, region: str, time_scale: float) -> None:
        super().__init__(daemon=True, name="scheduler")
        self.schedules = [s for s in schedules if s.function_arn]
        self.fleet = fleet
        self.region = region
        self.time_scale = time_scale
        self.stopping = threading.Event()
        self.fired: Counter[str] = Counter()

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
        """Invoke one schedule's function now."""
        assert schedule.function_arn is not None
        self.fired[schedule.rule] += 1
        # A failed invocation is counted on the fleet; the next tick runs it again, as the schedule would.
        with contextlib.suppress(InvocationError):
            self.fleet.invoke(schedule.function_arn, self.event_for(schedule))

    def run(self) -> None:
        next_due = {
            s.rule: time.monotonic() + schedule_period(s.expression) / self.time_scale for s in self.schedules
        }
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for schedule in self.schedules:
                if now >= next_due[schedule.rule]:
                    next_due[schedule.rule] = now + schedule_period(schedule.expression) / self.time_scale
                    self.fire(schedule)


def queue_visibility(sqs: Any, url: str) -> int:
    """A queue's visibility timeout, read back from the emulator."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    return int(attributes.get("VisibilityTimeout", 30))
