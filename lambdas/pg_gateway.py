"""pg_gateway: the payment gateway as a Lambda function (simulated here; the real PG integration
would live behind the same request/response).

Invoked synchronously (Lambda Invoke, RequestResponse) by `lambdas.shared.gateway.GatewayClient`.

Request (JSON object)::

    {"operation": "authorize" | "void" | "refund",
     "paymentId": "<id>",            # the idempotency key, together with operation
     "amount": <positive int>,       # smallest currency unit; must match on a repeat
     "fundingId": "...", "paymentMethod": "..."}   # optional, informational

Response, an answer (HTTP-like 200 with `ok: true`)::

    {"ok": true, "operation": "...", "paymentId": "...", "amount": <int>,
     "outcome": "APPROVED" | "DECLINED" | "VOIDED" | "REFUNDED",
     "reference": "<gateway reference>", "processedAt": "<ISO 8601 UTC>",
     "reason": "<decline reason>",   # reason only on DECLINED ("voided": refused after a void)
     "authorized": <bool>}           # on VOIDED only: whether an authorization was released

Response, no answer (`ok: false`)::

    {"ok": false, "error": "TRANSIENT" | "INVALID_REQUEST" | "CONFLICT",
     "retryable": <bool>, "message": "<human text>"}

TRANSIENT (retryable) means the caller must retry; DECLINED is a final answer. Every operation is
idempotent by (operation, paymentId): a repeat returns the first answer byte for byte, and a
repeat with a different amount is a CONFLICT (nothing is written).

Authorize, void and refund of one payment act on ONE gateway record per payment (the gateway's
log: key `contract.gateway_record_id(paymentId)` in the idempotency table, no TTL), each with ONE
conditional write, so they serialize whatever order they arrive in (DESIGN §3.6) and a repeat,
concurrent or later, is answered from what the record holds:
- authorize records `authorizedAt` unless a void came first: then it is refused, answered
  DECLINED with reason `voided`, and `authorizeRefused` is recorded;
- void records `voidedAt` and `voids = 1` once: after an authorize it releases it, before any
  authorize it makes a later authorize refused; a repeat never counts twice;
- refund records `refundedAt` and `refunds = 1` once.
The record is the whole of the idempotency: an earlier version also kept Powertools idempotency
records (a put before, an update after each operation), which the record made redundant and
which cost two more writes per call (issue 13: AWS calls per captured payment).

Behaviour from the environment (all optional): PG_TRANSIENT_FAILURE_RATE (0..1, default 0),
PG_DECLINE_RATE (0..1, default 0), PG_LATENCY_MS (default 0), PG_SEED (default 0). Declines are
a pure function of (seed, paymentId), so the same payment always gets the same answer; transient
failures come from a generator seeded with PG_SEED, so the same call sequence reproduces.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from lambdas.shared import aws
from lambdas.shared.config import env_int, env_rate, env_str, require_environment
from lambdas.shared.contract import (
    ENV_PG_DECLINE_RATE,
    ENV_PG_LATENCY_MS,
    ENV_PG_SEED,
    ENV_PG_TRANSIENT_FAILURE_RATE,
    IDEMPOTENCY_TABLE,
    gateway_record_id,
    utc_now_iso,
)
from lambdas.shared.gateway import APPROVED, DECLINED, REFUNDED, VOIDED
from lambdas.shared.telemetry import function_logger
from lambdas.specs.pg_gateway import SPEC

require_environment(SPEC.environment, function=SPEC.name)

OPERATIONS = ("authorize", "void", "refund")
DECLINE_REASONS = ("insufficient_funds", "card_declined", "do_not_honor")
VOIDED_FIRST = "voided"
"""Decline reason of an authorize that arrived after the payment's void."""

logger = function_logger(SPEC.name)
_rng: list[random.Random] = []
aws.on_reset(_rng.clear)


class _AmountConflict(Exception):
    """The payment's record holds another amount: the request reuses a paymentId."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    return int(_digest(*parts)[:16], 16) / 2**64


def _transient_draw() -> float:
    if not _rng:
        _rng.append(random.Random(env_int(ENV_PG_SEED, 0)))
    return _rng[0].random()


def _error(code: str, message: str, *, retryable: bool) -> dict[str, Any]:
    return {"ok": False, "error": code, "retryable": retryable, "message": message}


def _validate(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "request must be a JSON object"
    if event.get("operation") not in OPERATIONS:
        return f"operation must be one of {', '.join(OPERATIONS)}"
    if not isinstance(event.get("paymentId"), str) or not event["paymentId"]:
        return "paymentId must be a non-empty string"
    amount = event.get("amount")
    if type(amount) is not int or amount <= 0:
        return "amount must be a positive integer"
    return None


def _record_update(
    payment_id: str, update: str, values: dict[str, Any], condition: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A conditional write on the payment's gateway record: (new record, {}) or (None, record as is).

    Raises _AmountConflict, writing nothing, when the record holds another amount."""
    amount = values.pop(":amount")
    done, current = aws.update_or_current(
        env_str(IDEMPOTENCY_TABLE.env_var),
        {IDEMPOTENCY_TABLE.partition_key: gateway_record_id(payment_id)},
        update,
        {":pid": payment_id, ":amount": amount, **values},
        condition=f"(attribute_not_exists(amount) OR amount = :amount) AND ({condition})",
    )
    if done is None and current and current.get("amount") not in (None, amount):
        raise _AmountConflict
    return done, current or {}


_IDENTITY = "paymentId = if_not_exists(paymentId, :pid), amount = if_not_exists(amount, :amount)"


def _authorize(answer: dict[str, Any], decline_reason: str | None) -> dict[str, Any]:
    """Hold the amount unless the payment was voided first (then refuse: DECLINED, `voided`)."""
    payment_id, now = answer["paymentId"], answer["processedAt"]
    if decline_reason is None:
        update = f"SET {_IDENTITY}, authorizedAt = :now, authorizationRef = :ref"
        values = {":amount": answer["amount"], ":now": now, ":ref": answer["reference"]}
    else:
        update = f"SET {_IDENTITY}, declinedAt = :now, declineReason = :reason"
        values = {":amount": answer["amount"], ":now": now, ":reason": decline_reason}
    done, current = _record_update(
        payment_id,
        update,
        values,
        " AND ".join(f"attribute_not_exists({name})" for name in ("voidedAt", "authorizedAt", "declinedAt")),
    )
    if done is not None:
        if decline_reason is None:
            return dict(answer, outcome=APPROVED)
        return dict(answer, outcome=DECLINED, reason=decline_reason)
    if current.get("authorizedAt"):  # this authorize took effect before (its answer was lost)
        return dict(
            answer,
            outcome=APPROVED,
            processedAt=current["authorizedAt"],
            reference=current["authorizationRef"],
        )
    if current.get("declinedAt"):
        return dict(
            answer, outcome=DECLINED, processedAt=current["declinedAt"], reason=current["declineReason"]
        )
    # Voided before any authorization: never hold money for a payment already given up on.
    _record_update(
        payment_id,
        f"SET {_IDENTITY}, authorizeRefused = if_not_exists(authorizeRefused, :now)",
        {":amount": answer["amount"], ":now": now},
        "attribute_exists(voidedAt)",
    )
    logger.warning("authorize refused: the payment was voided first")
    return dict(answer, outcome=DECLINED, reason=VOIDED_FIRST)


def _void(answer: dict[str, Any]) -> dict[str, Any]:
    """Release the authorization (or pre-empt it): takes effect once per payment."""
    done, current = _record_update(
        answer["paymentId"],
        f"SET {_IDENTITY}, voidedAt = :now, voidRef = :ref, voids = if_not_exists(voids, :zero) + :one",
        {
            ":amount": answer["amount"],
            ":now": answer["processedAt"],
            ":ref": answer["reference"],
            ":zero": 0,
            ":one": 1,
        },
        "attribute_not_exists(voidedAt)",
    )
    if done is not None:
        return dict(answer, outcome=VOIDED, authorized=bool(done.get("authorizedAt")))
    return dict(
        answer,
        outcome=VOIDED,
        processedAt=current["voidedAt"],
        reference=current.get("voidRef", answer["reference"]),
        authorized=bool(current.get("authorizedAt")),
    )


def _refund(answer: dict[str, Any]) -> dict[str, Any]:
    """Return captured money: takes effect once per payment."""
    done, current = _record_update(
        answer["paymentId"],
        f"SET {_IDENTITY}, refundedAt = :now, refundRef = :ref,"
        " refunds = if_not_exists(refunds, :zero) + :one",
        {
            ":amount": answer["amount"],
            ":now": answer["processedAt"],
            ":ref": answer["reference"],
            ":zero": 0,
            ":one": 1,
        },
        "attribute_not_exists(refundedAt)",
    )
    if done is not None:
        return dict(answer, outcome=REFUNDED)
    return dict(
        answer,
        outcome=REFUNDED,
        processedAt=current["refundedAt"],
        reference=current.get("refundRef", answer["reference"]),
    )


def _execute(data: dict[str, Any]) -> dict[str, Any]:
    """The gateway's decision for one (operation, paymentId), or the one its record already holds."""
    operation, payment_id, amount = data["operation"], data["paymentId"], data["amount"]
    seed = str(env_int(ENV_PG_SEED, 0))
    answer: dict[str, Any] = {
        "ok": True,
        "operation": operation,
        "paymentId": payment_id,
        "amount": amount,
        "processedAt": utc_now_iso(),
        "reference": f"{operation[:3]}_{_digest(seed, operation, payment_id)[:16]}",
    }
    if operation == "authorize":
        reason = None
        if _unit(seed, "decline", payment_id) < env_rate(ENV_PG_DECLINE_RATE):
            reason = DECLINE_REASONS[int(_unit(seed, "reason", payment_id) * len(DECLINE_REASONS))]
        return _authorize(answer, reason)
    if operation == "void":
        return _void(answer)
    return _refund(answer)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one gateway request (see the module docstring for the JSON shapes)."""
    problem = _validate(event)
    if problem:
        logger.warning("invalid gateway request", extra={"reason": problem})
        return _error("INVALID_REQUEST", problem, retryable=False)
    logger.append_keys(paymentId=event["paymentId"], operation=event["operation"])
    try:
        latency_ms = env_int(ENV_PG_LATENCY_MS, 0, minimum=0)
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if _transient_draw() < env_rate(ENV_PG_TRANSIENT_FAILURE_RATE):
            logger.info("simulated transient gateway failure")
            return _error("TRANSIENT", "gateway temporarily unavailable", retryable=True)
        answer = _execute({k: event[k] for k in ("operation", "paymentId", "amount")})
    except _AmountConflict:
        return _error("CONFLICT", "paymentId was already used with a different amount", retryable=False)
    finally:
        logger.remove_keys(["paymentId", "operation"])
    logger.info("gateway answer", extra={"outcome": answer["outcome"]})
    return answer
