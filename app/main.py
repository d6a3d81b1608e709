"""The ASGI application: `app.main:app` for uvicorn, `create_app(settings)` for tests and tools.

`app` is built on first access (PEP 562), from the environment: importing this module never needs AWS
settings, but serving it without them fails at start-up with a message naming each bad variable.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import Services, router
from app.auth import SigningKeySource, TokenVerifier, jwks_client_for
from app.errors import error_response, install_error_handlers
from app.events import PaymentEventPublisher
from app.idempotency import IdempotentExecutor
from app.logs import configure_logging, request_id_var
from app.quotas import QuotaLimits, Quotas
from app.settings import Settings, load_settings
from app.store import Store

MAX_BODY_BYTES = 64 * 1024
"""Campaign and payment bodies are a few hundred bytes; anything near this is abuse."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HSTS = b"max-age=63072000; includeSubDomains"
"""Two years: once a browser met the API over TLS it never tries plain HTTP again."""
_NO_STORE_PATH_PREFIXES = ("/api/payments",)
"""Besides every authenticated response: a payment is personal, whatever carried the request."""

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")


def security_headers(scope: Scope, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """Headers every response carries: no MIME sniffing; no caching of authenticated answers or of
    payments (a shared proxy or the browser's disk must not keep them); HSTS when the request came
    over TLS (directly, or through the load balancer, which sets X-Forwarded-Proto)."""
    extra = [(b"x-content-type-options", b"nosniff")]
    path = str(scope.get("path", ""))
    if b"authorization" in headers or path.startswith(_NO_STORE_PATH_PREFIXES):
        extra.append((b"cache-control", b"no-store"))
    forwarded_proto = headers.get(b"x-forwarded-proto", b"").split(b",")[0].strip().lower()
    if scope.get("scheme") == "https" or forwarded_proto == b"https":
        extra.append((b"strict-transport-security", HSTS))
    return extra


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-Id when sane, else a new one), echoes it in
    the response, exposes it to every log line of the request and writes one access line per request.
    Also caps the body size, answering 413 in the error envelope, and adds `security_headers`.

    A plain ASGI middleware: it costs microseconds, unlike BaseHTTPMiddleware.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> StarletteHTTPException:
        return StarletteHTTPException(413, f"The request body is larger than {self.max_body_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        added_headers = [(b"x-request-id", request_id.encode()), *security_headers(scope, headers)]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), *added_headers]
            await send(message)

        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise self._too_large()  # inside the route: rendered by the HTTPException handler
            return message

        try:
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                response = error_response(413, "payload_too_large", self._too_large().detail)
                await response(scope, receive, send_with_request_id)
            else:
                await self.app(scope, receive_with_limit, send_with_request_id)
        except Exception:
            # Logged here, inside the request's context, so the traceback carries the request id.
            error_logger.exception("unhandled error")
            if response_started:
                raise
            response = error_response(
                500, "internal_error", "An unexpected error occurred; it has been logged"
            )
            await response(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": getattr(route, "path", None) or "(unmatched)",
                    "statusCode": status_code,
                    "durationMs": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _aws_client(service: str, settings: Settings) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=64,
    )
    return boto3.session.Session().client(
        service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url, config=config
    )


def create_app(
    settings: Settings | None = None,
    *,
    signing_keys: SigningKeySource | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the service. `signing_keys` replaces the JWKS client (tests feed the emulator's keys)."""
    settings = settings or load_settings()
    if configure_logs:
        configure_logging()
    dynamodb = _aws_client("dynamodb", settings)
    store = Store(
        dynamodb,
        fundings_table=settings.fundings_table,
        payments_table=settings.payments_table,
        idempotency_table=settings.idempotency_table,
    )
    docs = settings.api_docs
    application = FastAPI(
        title="Crowdfunding API",
        version="1.0.0",
        description="Campaigns and payments (DESIGN §2). Every body is a `{status, payload}` envelope.",
        # Off on prod (API_DOCS): the contract is no secret, but an open console invites probing.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # A slash redirect is built from the Host header: a forged Host would make the API redirect
        # clients to any site. Paths have no trailing slash; `/api/fundings/` is a 404.
        redirect_slashes=False,
    )
    application.state.settings = settings
    application.state.services = Services(
        store=store,
        publisher=PaymentEventPublisher(_aws_client("sns", settings), settings.payments_topic_arn),
        verifier=TokenVerifier(settings, signing_keys or jwks_client_for(settings)),
        idempotency=IdempotentExecutor(store),
        quotas=Quotas(
            store,
            QuotaLimits(
                payments_per_minute=settings.quota_payments_per_minute,
                payments_per_campaign_per_day=settings.quota_payments_per_campaign_per_day,
                campaigns_per_day=settings.quota_campaigns_per_day,
            ),
        ),
    )
    application.include_router(router)
    install_error_handlers(application)
    application.add_middleware(RequestContextMiddleware)
    return application


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """Build `app` from the environment on first access (what `uvicorn app.main:app` does)."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
