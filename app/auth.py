"""Bearer-token authentication against the Cognito user pool's JWKS.

Both Cognito token kinds are accepted, because a browser client usually holds the ID token and a
machine client the access token:
- `token_use=id`: the audience (`aud`) must be the app client id;
- `token_use=access`: the `client_id` claim must be the app client id.
In both, the signature (RS256, key from the pool's JWKS), the issuer and the expiry are checked, and
`sub` becomes the caller's user id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import jwt
from jwt import PyJWK, PyJWKClient

from app.errors import ApiError
from app.settings import Settings

logger = logging.getLogger(__name__)

_LEEWAY_SECONDS = 30
"""Clock skew tolerated on exp/iat between Cognito and this task."""


class SigningKeySource(Protocol):
    """Finds the public key a token was signed with (PyJWKClient in production)."""

    def get_signing_key_from_jwt(self, token: str) -> PyJWK: ...


@dataclass(frozen=True)
class Caller:
    """The authenticated user."""

    user_id: str
    token_use: str


def jwks_client_for(settings: Settings) -> PyJWKClient:
    """PyJWKClient over the pool's JWKS: the key set is cached for an hour, signing keys per kid."""
    return PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=3600, timeout=5)


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.InvalidIssuerError, "it was issued by another identity provider (wrong issuer)"),
    (jwt.ImmatureSignatureError, "it is not valid yet (issued or valid-from in the future)"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
    (jwt.InvalidAlgorithmError, "it is not signed with RS256"),
    (jwt.InvalidIssuedAtError, "its issued-at time is not a number"),
    (jwt.DecodeError, "it cannot be decoded"),
)


def _reason(exc: jwt.InvalidTokenError) -> str:
    """Why a token was refused, in words: a client learns what to fix, an attacker nothing about
    which library (and version) checks tokens here."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"it lacks the required claim '{exc.claim}'"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "it does not pass verification"


class TokenVerifier:
    """Verifies Cognito user-pool JWTs for one app client."""

    def __init__(self, settings: Settings, keys: SigningKeySource) -> None:
        self._issuer = settings.issuer
        self._client_id = settings.cognito_app_client_id
        self._keys = keys

    def verify(self, token: str) -> Caller:
        """Return the caller, or raise ApiError 401 (bad token) / 503 (JWKS unreachable)."""
        try:
            signing_key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            logger.warning("the user pool's JWKS could not be fetched")
            raise ApiError(
                503, "auth_unavailable", "The identity provider's keys cannot be fetched; retry later"
            ) from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError):
            raise _unauthorized("The bearer token is malformed or signed by an unknown key") from None
        try:
            claims = jwt.decode(
                token,
                signing_key,
                algorithms=["RS256"],
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The bearer token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"The bearer token is invalid: {_reason(exc)}") from None
        token_use = claims.get("token_use")
        if token_use == "id":
            audience_ok = claims.get("aud") == self._client_id
        elif token_use == "access":
            audience_ok = claims.get("client_id") == self._client_id
        else:
            raise _unauthorized("The bearer token is neither an ID nor an access token")
        if not audience_ok:
            raise _unauthorized("The bearer token was issued to another app client")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise _unauthorized("The bearer token has no usable subject")
        return Caller(user_id=subject, token_use=token_use)
