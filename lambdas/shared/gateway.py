"""The one client every function uses to call the `pg_gateway` function (Lambda Invoke).

Outcomes: an APPROVED/DECLINED/VOIDED/REFUNDED `GatewayResult` is an answer (a decline is final);
`GatewayTransientError` means "no answer, retry" (error response marked retryable, a
FunctionError, or the Invoke call itself failing). The invoke callable is injectable because a
test cannot execute Lambda code on moto; production uses boto3's `lambda.invoke`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared import aws
from lambdas.shared.config import env_str
from lambdas.shared.contract import ENV_PG_GATEWAY_FUNCTION

InvokeFn = Callable[..., Mapping[str, Any]]
"""boto3's signature: invoke(FunctionName=..., Payload=bytes) -> {StatusCode, Payload, FunctionError?}."""

APPROVED = "APPROVED"
DECLINED = "DECLINED"
VOIDED = "VOIDED"
REFUNDED = "REFUNDED"


class GatewayError(Exception):
    """The gateway gave no usable answer."""


class GatewayTransientError(GatewayError):
    """Retry later: the gateway (or the path to it) failed this time."""


class GatewayRequestError(GatewayError):
    """The gateway rejected the request itself (a bug or a conflicting payload); retrying won't help."""


@dataclass(frozen=True)
class GatewayResult:
    """The gateway's answer to one operation."""

    operation: str
    payment_id: str
    outcome: str
    amount: int
    reference: str
    processed_at: str
    reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED


class GatewayClient:
    """authorize / void / refund, each idempotent at the gateway by payment id."""

    def __init__(self, function_name: str, invoke: InvokeFn) -> None:
        self._function_name = function_name
        self._invoke = invoke

    def authorize(self, payment_id: str, amount: int, **details: Any) -> GatewayResult:
        return self._call("authorize", payment_id, amount, details)

    def void(self, payment_id: str, amount: int, **details: Any) -> GatewayResult:
        return self._call("void", payment_id, amount, details)

    def refund(self, payment_id: str, amount: int, **details: Any) -> GatewayResult:
        return self._call("refund", payment_id, amount, details)

    def _call(self, operation: str, payment_id: str, amount: int, details: dict[str, Any]) -> GatewayResult:
        request = {"operation": operation, "paymentId": payment_id, "amount": amount}
        request.update({k: v for k, v in details.items() if v is not None})
        try:
            response = self._invoke(FunctionName=self._function_name, Payload=json.dumps(request).encode())
        except (ClientError, BotoCoreError) as exc:
            raise GatewayTransientError(f"invoking {self._function_name} failed: {exc}") from exc
        payload = response.get("Payload")
        raw = payload.read() if payload is not None and hasattr(payload, "read") else payload
        if response.get("FunctionError"):
            raise GatewayTransientError(f"gateway function error {response['FunctionError']}: {raw!r:.300}")
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise GatewayTransientError(f"gateway answered with non-JSON: {raw!r:.300}") from exc
        if not isinstance(body, dict) or not body.get("ok"):
            detail = body if isinstance(body, dict) else {}
            message = f"gateway {operation} {payment_id}: {detail.get('error')}: {detail.get('message')}"
            if detail.get("retryable", True):
                raise GatewayTransientError(message)
            raise GatewayRequestError(message)
        return GatewayResult(
            operation=operation,
            payment_id=payment_id,
            outcome=str(body["outcome"]),
            amount=int(body.get("amount", amount)),
            reference=str(body.get("reference", "")),
            processed_at=str(body["processedAt"]),
            reason=body.get("reason"),
        )


_invoke_override: list[InvokeFn] = []


def set_invoke(invoke: InvokeFn | None) -> None:
    """Route gateway calls through `invoke` instead of boto3 (tests); None restores boto3."""
    _invoke_override.clear()
    if invoke is not None:
        _invoke_override.append(invoke)


def gateway_client() -> GatewayClient:
    """The client for the gateway named by PG_GATEWAY_FUNCTION_NAME."""
    invoke = _invoke_override[0] if _invoke_override else aws.client("lambda").invoke
    return GatewayClient(env_str(ENV_PG_GATEWAY_FUNCTION), invoke)
