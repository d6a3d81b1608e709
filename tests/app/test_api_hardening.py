"""Hardening (issue 13 item 14): response headers, no banner, no Host-built redirects, no public docs on
prod. (Invisible titles and the 401 messages are covered in test_api_validation and test_api_auth.)"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from local import PRODUCT
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api, Emulator, running_api
from tests.app.test_api_campaigns import create

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


def test_every_response_says_nosniff(api: Api) -> None:
    owner = api.user()
    responses = [
        api.client.get("/healthz"),
        api.client.get("/api/nothing-here"),
        api.client.post("/api/funding", json=campaign_body()),  # 401
        api.client.post("/api/funding", json=campaign_body(), headers=api.auth(owner)),  # 201
        api.client.post("/api/funding", json={"title": ""}, headers=api.auth(owner)),  # 422
        api.client.post(
            "/api/funding",
            content=b"x" * 70_000,
            headers={**api.auth(owner), "Content-Type": "application/json"},
        ),  # 413, answered by the middleware itself
    ]
    assert [r.status_code for r in responses] == [200, 404, 401, 201, 422, 413]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.status_code


def test_payment_reads_and_authenticated_answers_are_not_stored(api: Api) -> None:
    backer = api.user()
    funding_id = create(api, api.user())
    created = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(backer))
    payment_id = created.json()["paymentId"]
    read = api.client.get(f"/api/payments/{payment_id}", headers=api.auth(backer))
    anonymous = api.client.get(f"/api/payments/{payment_id}")
    for response in (created, read, anonymous):
        assert response.headers["Cache-Control"] == "no-store", response.status_code
    put = api.client.put(f"/api/funding/{funding_id}", json=campaign_body(), headers=api.auth(backer))
    assert put.status_code == 403 and put.headers["Cache-Control"] == "no-store"
    public = api.client.get(f"/api/funding/{funding_id}")
    assert "Cache-Control" not in public.headers  # a public campaign page may be cached


def test_hsts_only_when_the_request_came_over_tls(api: Api) -> None:
    behind_alb = api.client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert behind_alb.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert "Strict-Transport-Security" not in api.client.get("/healthz").headers
    plain = api.client.get("/healthz", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


def test_a_forged_host_is_never_redirected_to(api: Api) -> None:
    """`GET /api/fundings/` with a forged Host answered 307 Location: http://<forged host>/api/fundings."""
    response = api.client.get("/api/fundings/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["payload"]["error"] == "not_found"
    assert api.client.get("/api/fundings").status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_documents_are_off_unless_the_setting_turns_them_on(emulator: Emulator, path: str) -> None:
    with running_api(emulator, api_docs=False) as off:
        response = off.client.get(path)
        assert response.status_code == 404
        assert response.json()["payload"]["error"] == "not_found"
        assert off.client.get("/healthz").status_code == 200
    with running_api(emulator, api_docs=True) as on:
        assert on.client.get(path).status_code == 200


# --- no server banner -------------------------------------------------------------------------


async def tiny_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A stand-in ASGI app: what is under test is uvicorn's command line, not the service."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def dockerfile_command() -> list[str]:
    line = next(
        line for line in (ROOT / "app" / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    )
    command: list[str] = __import__("json").loads(line[len("CMD") :])
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served_like_the_image() -> Iterator[str]:
    """uvicorn started with the Dockerfile's own flags (host and port aside)."""
    command = dockerfile_command()
    assert command[:2] == ["uvicorn", "app.main:app"]
    flags, skip = [], False
    for arg in command[2:]:
        if skip:
            skip = False
        elif arg in ("--host", "--port"):
            skip = True
        else:
            flags.append(arg)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.app.test_api_hardening:tiny_app", "--host", "127.0.0.1",
         "--port", str(port), *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, "uvicorn refused the Dockerfile's flags"
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_image_serves_without_a_server_banner(served_like_the_image: str) -> None:
    with urllib.request.urlopen(served_like_the_image, timeout=5) as response:
        headers: Any = response.headers
        assert response.status == 200
        assert headers.get("server") is None, headers.get("server")


def test_the_local_system_serves_the_api_without_a_banner_too() -> None:
    """toolchain/embedded/system.py starts uvicorn itself; it must pass the same flag as the image."""
    source = (ROOT / "toolchain" / "embedded" / "system.py").read_text()
    launch = re.search(r"argv = \[\s*app,(?P<args>[^\]]*)\]", source)
    assert launch, (
        "the local system no longer starts uvicorn with the product's app and its flags as expected"
    )
    assert PRODUCT.api_app == "app.main:app"
    args = shlex.split(launch.group("args").replace(",", " "))
    assert "--no-server-header" in args, args
