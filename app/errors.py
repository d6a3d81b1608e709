"""Errors as `{"status", "payload": {"error", "message", "details"}}` envelopes, for every failure path.

FastAPI's own failures (validation, malformed JSON, unknown routes, oversized bodies) are rewritten into
the same envelope so a client handles exactly one error shape, and nothing a client sends becomes a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.models import ErrorDetail, ErrorEnvelope, ErrorPayload

logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}

_FRIENDLIER_MESSAGES: dict[str, str] = {
    "timezone_aware": "Input should have timezone info: naive datetimes are rejected "
    "(write e.g. 2026-01-31T12:00:00Z or 2026-01-31T21:00:00+09:00)",
    "extra_forbidden": "Unknown field: not part of this operation's body",
}


UNEXPECTED_ERROR_MESSAGE = "An unexpected error occurred; it has been logged with the request id"


class ApiError(Exception):
    """A failure with a status, a stable machine-readable code and the fields it concerns."""

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.details = list(details)
        self.headers = headers


def field_error(
    status_code: int, error: str, field: str, rule: str, message: str, location: str = "body"
) -> ApiError:
    """An ApiError about one field, naming the rule it broke."""
    return ApiError(
        status_code,
        error,
        message,
        [ErrorDetail(location=location, field=field, rule=rule, message=message)],
    )


def error_response(
    status_code: int,
    error: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render the error envelope."""
    envelope = ErrorEnvelope(
        status=status_code,
        payload=ErrorPayload(error=error, message=message, details=list(details)),
    )
    return JSONResponse(envelope.model_dump(mode="json"), status_code=status_code, headers=headers)


def _validation_details(errors: Sequence[Any]) -> list[ErrorDetail]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else "body"
        field_path = ".".join(loc[1:] if loc and loc[0] == location else loc)
        rule = str(error.get("type", "invalid"))
        message = _FRIENDLIER_MESSAGES.get(rule, str(error.get("msg", "invalid value")))
        details.append(ErrorDetail(location=location, field=field_path, rule=rule, message=message))
    return details


async def _handle_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.error, exc.message, exc.details, exc.headers)


async def _handle_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc.errors())
    if any(detail.rule == "json_invalid" for detail in details):
        return error_response(400, "malformed_json", "The request body is not valid JSON", details)
    summary = "; ".join(f"{d.field or d.location}: {d.message}" for d in details[:5])
    return error_response(422, "validation_error", f"The request is invalid: {summary}", details)


async def _handle_http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_ERROR_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None)


async def _handle_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", UNEXPECTED_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure, expected or not, answer with the error envelope."""
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)
