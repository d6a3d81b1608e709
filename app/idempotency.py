"""`Idempotency-Key` for POSTs: a retried request gets the first answer instead of a second effect.

Records live in the shared idempotency table under `api#<userId>#<key>` (the functions' Powertools
records use other prefixes), expire after a day (`expiration`, the table's TTL attribute) and carry a
fingerprint of the route and body, so reusing a key for another request is refused with a 409. The
resource created under a key stores the same fingerprint (`requestHash`), so the refusal also holds
after the record expired (the key-derived id then already exists: `same_request` compares).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse

from app.errors import ApiError
from app.store import Store
from lambdas.shared import contract

logger = logging.getLogger(__name__)

RECORD_TTL_SECONDS = 24 * 3600
IN_PROGRESS_SECONDS = 60
"""How long a claim blocks retries before another request may take over (the first one died)."""
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
REPLAY_HEADER = "Idempotent-Replayed"
_ID_NAMESPACE = uuid.UUID("5f0e7f65-6f0a-4d4e-9a4b-4e1f4d7b2c11")


@dataclass(frozen=True)
class Outcome:
    """A response in storable form."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def render(self, replayed: bool = False) -> JSONResponse:
        """The HTTP response, marked when it is a replay."""
        headers = {**self.headers, REPLAY_HEADER: "true"} if replayed else self.headers
        return JSONResponse(self.body, status_code=self.status_code, headers=headers)


def record_id(user_id: str, key: str) -> str:
    """The idempotency-table key of a user's key: prefixed so it never meets a function's record."""
    return f"api#{user_id}#{key}"


def derived_resource_id(user_id: str, route: str, key: str | None) -> str:
    """A fresh UUID, or with a key a UUID derived from it: a retry that outlived its claim writes the
    same item again, which the conditional put detects, instead of creating a duplicate."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_ID_NAMESPACE, f"{user_id}\n{route}\n{key}"))


def fingerprint(route: str, body: dict[str, Any]) -> str:
    """What "the same request" means: same route, same validated body (key order irrelevant)."""
    canonical = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


REQUEST_HASH_ATTRIBUTE = "requestHash"
"""Stored on a campaign or payment created under a key: the `fingerprint` of the request that created
it, so a reuse of the key with another body is still refused after the key's record expired."""


def key_reused_error(created: str | None = None) -> ApiError:
    """The 409 for a key used again with a different request."""
    first_use = f" (its first use created {created})" if created else ""
    return ApiError(
        409,
        "idempotency_key_reused",
        f"This Idempotency-Key was already used for a different request{first_use}; "
        "use a new key per request",
    )


def same_request(
    stored: dict[str, Any], request_hash: str, new_item: dict[str, Any], fields: tuple[str, ...]
) -> bool:
    """Whether a stored resource was created by this very request: by its stored hash, or, for an
    item written before hashes were stored, by the fields the request sets."""
    if REQUEST_HASH_ATTRIBUTE in stored:
        return bool(stored[REQUEST_HASH_ATTRIBUTE] == request_hash)
    return all(stored.get(name) == new_item.get(name) for name in fields)


class IdempotentExecutor:
    """Runs an operation at most once per (user, key) and replays its first response."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def run(
        self,
        *,
        user_id: str,
        key: str | None,
        route: str,
        body: dict[str, Any],
        operation: Callable[[], Outcome],
    ) -> JSONResponse:
        """Execute `operation` (or replay it) under the key; without a key, just execute it."""
        if key is None:
            return operation().render()
        now = int(self._clock())
        this_id = record_id(user_id, key)
        this_fingerprint = fingerprint(route, body)
        existing = self._store.claim_idempotency_record(
            {
                contract.IDEMPOTENCY_TABLE.partition_key: this_id,
                "status": "INPROGRESS",
                "fingerprint": this_fingerprint,
                str(contract.IDEMPOTENCY_TABLE.ttl_attribute): now + RECORD_TTL_SECONDS,
                "inProgressExpiration": now + IN_PROGRESS_SECONDS,
                "createdAt": contract.utc_now_iso(),
            },
            now_epoch=now,
        )
        if existing is not None:
            return self._answer_for_existing(existing, this_fingerprint)
        try:
            outcome = operation()
        except BaseException:
            self._release_quietly(this_id)
            raise
        stored = {"statusCode": outcome.status_code, "body": outcome.body, "headers": outcome.headers}
        try:
            self._store.complete_idempotency_record(this_id, stored)
        except ApiError:
            # The effect happened; its id is derived from the key, so a retry still cannot duplicate it.
            logger.warning("idempotency record not completed; a retry will be resolved by the resource id")
        return outcome.render()

    def _answer_for_existing(self, existing: dict[str, Any], this_fingerprint: str) -> JSONResponse:
        if existing.get("fingerprint") != this_fingerprint:
            raise key_reused_error()
        if existing.get("status") == "COMPLETED" and isinstance(existing.get("response"), str):
            stored = json.loads(existing["response"])
            return Outcome(stored["statusCode"], stored["body"], stored.get("headers", {})).render(
                replayed=True
            )
        raise ApiError(
            409,
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )

    def _release_quietly(self, this_id: str) -> None:
        try:
            self._store.release_idempotency_record(this_id)
        except Exception:
            logger.warning("idempotency claim not released; it lapses after its in-progress window")
