"""Bearer tokens: real Cognito tokens from moto are accepted; every kind of bad token is a 401."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from app.auth import jwks_client_for
from app.main import create_app
from tests.app.api_testkit import campaign_body, claims_for, payment_body, sign_token
from tests.app.conftest import Api

WRITES = [
    ("post", "/api/funding"),
    ("put", "/api/funding"),
    ("put", "/api/funding/some-id"),
    ("delete", "/api/fundings/some-id"),
    ("post", "/api/payments"),
    ("get", "/api/payments/some-id"),
]


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    """Authentication is stateless: the module shares one app."""
    return shared_api


def call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    if path == "/api/payments":
        body = payment_body("f")
    else:
        body = campaign_body(
            **({"fundingId": "some-id"} if (method, path) == ("put", "/api/funding") else {})
        )
    if method in ("get", "delete"):
        return api.client.request(method.upper(), path, headers=headers)
    return api.client.request(method.upper(), path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writes_without_a_token_are_401(api: Api, method: str, path: str) -> None:
    response = call(api, method, path, {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["payload"]["error"] == "unauthorized"


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c", "Token abc"]
)
def test_malformed_authorization_is_401(api: Api, authorization: str) -> None:
    response = call(api, "post", "/api/funding", {"Authorization": authorization})
    assert response.status_code == 401


def test_id_and_access_tokens_from_the_pool_are_accepted(api: Api) -> None:
    user = api.any_user()
    for kind in ("IdToken", "AccessToken"):
        response = api.client.post("/api/funding", json=campaign_body(), headers=api.auth(user, kind))
        assert response.status_code == 201, response.text
        funding_id = response.json()["fundingId"]
        assert api.client.get(f"/api/funding/{funding_id}").json()["payload"]["ownerId"] == user["sub"]


def test_tokens_of_another_app_client_are_401(api: Api) -> None:
    pool = api.emulator.pool
    other_client = pool.cognito.create_user_pool_client(UserPoolId=pool.pool_id, ClientName="other")
    tokens = pool.tokens_for(client_id=other_client["UserPoolClient"]["ClientId"])
    for kind in ("IdToken", "AccessToken"):
        response = call(api, "post", "/api/funding", api.auth(tokens, kind))
        assert response.status_code == 401, kind
        assert "another app client" in response.json()["payload"]["message"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"}, "wrong issuer"),
        ({"iss": None}, "lacks the required claim 'iss'"),
        ({"token_use": None}, "lacks the required claim 'token_use'"),
        ({"token_use": "refresh"}, "neither an ID nor an access token"),
        ({"aud": "someone-else"}, "another app client"),
        ({"sub": None}, "lacks the required claim 'sub'"),
        ({"sub": ""}, "no usable subject"),
        ({"iat": int(time.time()) + 3600}, "not valid yet"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iat": "yesterday"}, "issued-at time is not a number"),
    ],
)
def test_bad_claims_are_401(api: Api, overrides: dict[str, Any], message: str) -> None:
    token = sign_token(claims_for(api.settings, **overrides))
    response = call(api, "post", "/api/funding", bearer(token))
    assert response.status_code == 401
    assert message in response.json()["payload"]["message"]
    assert_names_no_library_class(response.json()["payload"]["message"])


JWT_EXCEPTION_NAMES = sorted(
    name for name, value in vars(jwt).items() if isinstance(value, type) and issubclass(value, Exception)
)


def assert_names_no_library_class(message: str) -> None:
    """Issue 13 item 14: a 401 tells the client what is wrong, never which library said so."""
    named = [name for name in JWT_EXCEPTION_NAMES if name in message]
    assert not named, f"{message!r} names {named}"


def test_a_correctly_signed_crafted_token_is_accepted(api: Api) -> None:
    """The control for the cases above: only the overridden claim made them fail."""
    token = sign_token(claims_for(api.settings, sub="crafted-user"))
    response = api.client.post("/api/funding", json=campaign_body(), headers=bearer(token))
    assert response.status_code == 201


def test_foreign_signatures_unknown_keys_and_unsigned_tokens_are_401(api: Api) -> None:
    claims = claims_for(api.settings)
    forged = sign_token(claims, foreign_key=True)
    unknown_kid = sign_token(claims, kid="not-in-the-jwks")
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "dummy"})
    symmetric = jwt.encode(claims, key="x" * 32, algorithm="HS256", headers={"kid": "dummy"})
    for token in (forged, unknown_kid, unsigned, symmetric):
        response = call(api, "post", "/api/funding", bearer(token))
        assert response.status_code == 401
        assert_names_no_library_class(response.json()["payload"]["message"])
    response = call(api, "post", "/api/funding", bearer(forged.rsplit(".", 1)[0] + ".AAAA"))
    assert response.status_code == 401
    assert_names_no_library_class(response.json()["payload"]["message"])


def test_the_key_set_is_fetched_once_and_cached(api: Api) -> None:
    user = api.any_user()
    assert call(api, "post", "/api/funding", api.auth(user)).status_code == 201
    fetched = api.jwks.fetches
    for _ in range(5):
        assert call(api, "post", "/api/funding", api.auth(user)).status_code == 201
    assert api.jwks.fetches == fetched >= 1


@pytest.fixture
def app_with_unreachable_jwks(shared_api: Api) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    settings = shared_api.settings.model_copy(update={"cognito_jwks_url": "http://127.0.0.1:9/jwks.json"})
    app = create_app(settings, signing_keys=jwks_client_for(settings), configure_logs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unreachable_key_set_is_a_503_not_a_401(app_with_unreachable_jwks: Any, api: Api) -> None:
    response = app_with_unreachable_jwks.post(
        "/api/funding", json=campaign_body(), headers=api.auth(api.any_user())
    )
    assert response.status_code == 503
    assert response.json()["payload"]["error"] == "auth_unavailable"
