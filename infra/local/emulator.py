"""The AWS emulator: moto in server mode on 127.0.0.1, in its own process, counting API calls.

Run as `python -m infra.local.emulator --port 4566`. Besides every moto route it answers
`GET /_local/calls` with the number of AWS API calls served so far, by `service:Action`
(the benchmark's "AWS API calls per captured payment"), and `POST /_local/calls/reset`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

LOOPBACK = "127.0.0.1"
CALLS_PATH = "/_local/calls"

_TARGET_HEADER = re.compile(r"^[A-Za-z0-9_]+\.(?P<action>[A-Za-z0-9]+)$")
_SERVICE_FROM_AUTH = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")


def _classify(environ: dict[str, Any], body: bytes) -> str:
    """`service:Action` of one AWS request (JSON target header, query Action, or REST path)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _SERVICE_FROM_AUTH.search(auth)
    service = match.group("service") if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    target_match = _TARGET_HEADER.match(target)
    if target_match:
        return f"{service}:{target_match.group('action')}"
    query = environ.get("QUERY_STRING", "")
    for source in (query, body.decode("utf-8", "replace") if len(body) < 65536 else ""):
        action = re.search(r"(?:^|&)Action=([A-Za-z0-9]+)", source)
        if action:
            return f"{service}:{action.group(1)}"
    return f"{service}:{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"


class CallCounter:
    """WSGI middleware: counts every AWS call and serves the counts."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CALLS_PATH):
            if environ.get("REQUEST_METHOD") == "POST":
                with self.lock:
                    self.calls.clear()
            with self.lock:
                payload = json.dumps(dict(self.calls)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
            )
            return [payload]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        if not path.startswith("/moto-api"):
            with self.lock:
                self.calls[_classify(environ, body)] += 1
        return self.app(environ, start_response)


def serve(port: int) -> None:
    """Serve moto on 127.0.0.1:`port` until killed."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = CallCounter(DomainDispatcherApplication(create_backend_app))
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"emulator: moto listening on http://{LOOPBACK}:{port}", flush=True)
    server.serve_forever()


LOCAL_ACCESS_KEY = "local"
"""The emulator accepts any credentials; these keep every local client away from real ones."""


def emulator_session(region: str) -> Any:
    """A boto3 session with the local credentials (clients from it still need the endpoint)."""
    import boto3

    return boto3.session.Session(
        region_name=region, aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY
    )


def emulator_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client bound to the emulator."""
    return emulator_session(region).client(service, endpoint_url=endpoint_url)


def emulator_resource(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 resource (e.g. DynamoDB tables) bound to the emulator."""
    return emulator_session(region).resource(service, endpoint_url=endpoint_url)


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Block until the emulator answers, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{CALLS_PATH}", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise TimeoutError(f"the AWS emulator at {url} did not answer within {timeout:.0f}s")


def read_calls(url: str, reset: bool = False) -> Counter[str]:
    """AWS API calls served so far by `service:Action` (optionally resetting the count)."""
    request = urllib.request.Request(f"{url}{CALLS_PATH}", method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return Counter(json.loads(response.read()))


def main(argv: list[str]) -> int:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
