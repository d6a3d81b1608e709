"""One Lambda function's sandbox: its packaged archive, its declared environment, one process.

`python -m infra.local.worker --archive A --handler H --name N --port P` unpacks the archive,
puts it first on `sys.path` (so the function runs from its archive, not the source tree), and
serves invocations on 127.0.0.1:P one at a time, like one Lambda execution environment:
`POST /invoke` with the event as the body answers the handler's result, or an error payload
with the `X-Amz-Function-Error: Unhandled` header when the handler raises.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class LambdaContext:
    """The attributes of the Lambda context object that functions and Powertools read."""

    def __init__(self, name: str, memory: int, timeout: int, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
    handler = load_handler(handler_spec)

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
            context = LambdaContext(name, memory, timeout, region)
            started = time.monotonic()
            try:
                result = handler(event, context)
            except Exception as exc:  # a handler crash is a function error, reported like Lambda does
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
                self._reply(200, payload, function_error=True)
                return
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                message = f"Task timed out after {elapsed:.2f} seconds"
                self._reply(200, {"errorMessage": message, "errorType": "TimeoutError"}, function_error=True)
                return
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
    print(f"worker {name}: ready on {LOOPBACK}:{port}", flush=True)
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
    code_dir = unpack(args.archive, args.workdir)
    sys.path.insert(0, str(code_dir))
    serve(args.name, args.handler, args.port, args.memory, args.timeout, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
