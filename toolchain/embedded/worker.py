"""One Lambda execution environment: its packaged archive, its declared environment, one process.

`python -m toolchain.embedded.worker --archive A --handler H --name N --port P` unpacks the archive,
puts it first on `sys.path` (so the function runs from its archive, not the source tree), and
serves invocations on 127.0.0.1:P one at a time, like one Lambda execution environment:
`POST /invoke` with the event as the body answers the handler's result, or an error payload
with the `X-Amz-Function-Error: Unhandled` header when the handler raises. It logs as the
Lambda runtime does: START/END/REPORT lines per invocation (Init Duration on the first) and
`[ERROR]` with the traceback of an unhandled exception.

Fault injection (`CRASH_RATE`): an invocation whose request carries `X-Local-Crash: <point>` is
killed with SIGKILL at that point — `0` before the handler runs, `n` when its n-th mutating AWS
call (counted by a botocore `after-call` hook on every client) has completed, `return` after the
handler returned but before the result is sent (also the point for a plan whose n-th write
never came).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from toolchain.embedded.faults import CRASH_AT_RETURN, CRASH_HEADER, crash_point_label, is_mutating

LOOPBACK = "127.0.0.1"
_STARTED = time.monotonic()


def mark_start() -> None:
    """The environment starts now (a fork of the zygote: its init time counts from the fork)."""
    global _STARTED
    _STARTED = time.monotonic()


class LambdaContext:
    """The attributes of the Lambda context object that functions and Powertools read."""

    def __init__(self, name: str, memory: int, timeout: int, region: str, request_id: str = "") -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class CrashSwitch:
    """Kills this process at the planned point of the current invocation (see the module doc)."""

    def __init__(self) -> None:
        self.point: str | None = None
        self.writes = 0
        self.last_write = ""

    def arm(self, point: str | None) -> None:
        """Plan for the invocation about to run (None: let it live)."""
        self.point = point
        self.writes = 0
        self.last_write = ""
        if point == "0":
            self.die()

    def after_call(self, http_response: Any = None, model: Any = None, **_: Any) -> None:
        """botocore `after-call` hook: count completed writes; die at the planned one."""
        if self.point is None or self.point == CRASH_AT_RETURN or model is None:
            return
        status = getattr(http_response, "status_code", 500)
        if not is_mutating(str(model.name)) or status >= 300:
            return
        self.writes += 1
        self.last_write = f"{model.service_model.service_name}.{model.name}"
        if self.writes >= int(self.point):
            self.die()

    def before_reply(self) -> None:
        """The handler returned: a plan that has not fired yet fires now."""
        if self.point is not None:
            self.point = CRASH_AT_RETURN
            self.die()

    def die(self) -> None:
        """SIGKILL this environment, saying where (the runtime logs the exit as Lambda does)."""
        assert self.point is not None
        where = crash_point_label(self.point)
        if self.last_write and self.point != CRASH_AT_RETURN:
            where += f" ({self.last_write})"
        print(f"[local fault] CRASH_RATE: killing this execution environment {where}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def install_write_hook(switch: CrashSwitch) -> None:
    """Register `switch.after_call` on every botocore client this process creates."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("after-call", switch.after_call)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def unpack(archive: Path, into: Path) -> Path:
    """Extract the deployment archive (fresh each start, as a new execution environment)."""
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(into)
    return into


def load_handler(spec: str) -> Any:
    """`package.module.function` → the function object."""
    module_name, _, function_name = spec.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def serve(name: str, handler_spec: str, port: int, memory: int, timeout: int, region: str) -> None:
    """Serve invocations forever, one at a time."""
    switch = CrashSwitch()
    install_write_hook(switch)
    handler = load_handler(handler_spec)
    init_ms = (time.monotonic() - _STARTED) * 1000
    first = [True]

    class Invocation(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._reply(200, {"function": name, "ready": True})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                event = json.loads(raw or b"{}")
            except ValueError:
                event = raw.decode("utf-8", "replace")
            request_id = self.headers.get("Lambda-Runtime-Aws-Request-Id") or str(uuid.uuid4())
            context = LambdaContext(name, memory, timeout, region, request_id)
            print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
            started = time.monotonic()
            switch.arm(self.headers.get(CRASH_HEADER))
            error: dict[str, Any] | None = None
            result: Any = None
            try:
                result = handler(event, context)
            except Exception as exc:  # a handler crash is a function error, reported like Lambda does
                error = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
                print(f"[ERROR] {type(exc).__name__}: {exc}\n{traceback.format_exc()}", end="", flush=True)
            elapsed = time.monotonic() - started
            if error is None and elapsed > timeout:
                message = f"Task timed out after {elapsed:.2f} seconds"
                error = {"errorMessage": message, "errorType": "TimeoutError"}
            switch.before_reply()
            duration = elapsed * 1000
            report = (
                f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                f"Billed Duration: {max(1, int(duration + 0.999))} ms\tMemory Size: {memory} MB"
            )
            if first[0]:
                report += f"\tInit Duration: {init_ms:.2f} ms"
                first[0] = False
            print(f"END RequestId: {request_id}\n{report}", flush=True)
            if error is not None:
                self._reply(200, error, function_error=True)
            else:
                self._reply(200, result)

        def _reply(self, status: int, payload: Any, function_error: bool = False) -> None:
            body = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if function_error:
                self.send_header("X-Amz-Function-Error", "Unhandled")
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer((LOOPBACK, port), Invocation)
    print(f"worker {name}: ready on {LOOPBACK}:{port} (init {init_ms:.0f} ms)", flush=True)
    server.serve_forever()


def main(argv: list[str]) -> int:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--archive", required=True, type=Path)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--timeout", type=int, default=3)
    parser.add_argument("--region", default="ap-northeast-2")
    args = parser.parse_args(argv)
    from toolchain.embedded.zygote import watch_parent

    watch_parent(os.getppid())  # the zygote, or the runner: an environment never outlives them
    code_dir = unpack(args.archive, args.workdir)
    sys.path.insert(0, str(code_dir))
    serve(args.name, args.handler, args.port, args.memory, args.timeout, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
