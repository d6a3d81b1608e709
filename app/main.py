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
from app.settings import Settings, load_settings
from app.store import Store

MAX_BODY_BYTES = 64 * 1024
"""Campaign and payment bodies are a few hundred bytes; anything near this is abuse."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-Id when sane, else a new one), echoes it in
    the response, exposes it to every log line of the request and writes one access line per request.
    Also caps the body size, answering 413 in the error envelope.

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
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
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
    application = FastAPI(
        title="Crowdfunding API",
        version="1.0.0",
        description="Campaigns and payments (DESIGN §2). Every body is a `{status, payload}` envelope.",
    )
    application.state.settings = settings
    application.state.services = Services(
        store=store,
        publisher=PaymentEventPublisher(_aws_client("sns", settings), settings.payments_topic_arn),
        verifier=TokenVerifier(settings, signing_keys or jwks_client_for(settings)),
        idempotency=IdempotentExecutor(store),
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
