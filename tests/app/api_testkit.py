"""Test helpers for the API: tables from the contract's specs, a Cognito pool issuing real tokens,
the emulator's JWKS and valid request bodies. Test-only: in production the infrastructure creates
the tables and the pool.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK, PyJWKClient
from moto.utilities.utils import load_resource

from app.models import to_iso_utc
from app.settings import Settings
from lambdas.shared import contract
from lambdas.shared.contract import TableSpec

REGION = "us-east-1"
API_TABLES = (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE, contract.IDEMPOTENCY_TABLE)


def create_table(dynamodb: Any, spec: TableSpec, name: str) -> None:
    """Create one table (on-demand, string keys, ALL-projected indexes, TTL) exactly as the spec says."""

    def key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": partition, "KeyType": "HASH"}]
        if sort:
            schema.append({"AttributeName": sort, "KeyType": "RANGE"})
        return schema

    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in spec.key_attributes],
        "KeySchema": key_schema(spec.partition_key, spec.sort_key),
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": key_schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    dynamodb.create_table(**request)
    if spec.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )


def create_api_tables(dynamodb: Any, suffix: str = "") -> dict[str, str]:
    """The API's three tables; returns {spec.env_var: table name}."""
    names = {spec.env_var: f"{spec.logical_name}{suffix}" for spec in API_TABLES}
    for spec in API_TABLES:
        create_table(dynamodb, spec, names[spec.env_var])
    return names


@dataclass(frozen=True)
class UserPool:
    """A Cognito user pool and app client in the emulator that hands out real signed tokens."""

    cognito: Any
    pool_id: str
    client_id: str

    @classmethod
    def create(cls, cognito: Any) -> UserPool:
        pool_id = cognito.create_user_pool(PoolName="crowdfunding-users")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="api",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]["ClientId"]
        return cls(cognito, pool_id, client_id)

    def tokens_for(self, username: str | None = None, client_id: str | None = None) -> dict[str, str]:
        """Sign a (new) user in; returns the AuthenticationResult (IdToken, AccessToken) and `sub`."""
        username = username or f"user-{uuid.uuid4().hex[:12]}"
        password = "Sup3r-secret!pw"
        with contextlib.suppress(self.cognito.exceptions.UsernameExistsException):
            self.cognito.admin_create_user(UserPoolId=self.pool_id, Username=username)
        self.cognito.admin_set_user_password(
            UserPoolId=self.pool_id, Username=username, Password=password, Permanent=True
        )
        result = self.cognito.admin_initiate_auth(
            UserPoolId=self.pool_id,
            ClientId=client_id or self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        user = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)
        sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
        return {"IdToken": result["IdToken"], "AccessToken": result["AccessToken"], "sub": sub}


class EmulatorJwks(PyJWKClient):
    """PyJWKClient whose key set is moto's public JWKS, read from moto's package instead of over HTTP
    (in-process moto does not intercept urllib). Key selection and caching are PyJWKClient's own."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.jwks_url, cache_keys=True)
        self.fetches = 0

    def fetch_data(self) -> Any:
        self.fetches += 1
        return load_resource("cognitoidp/resources/jwks-public.json")


def test_settings(tables: dict[str, str], topic_arn: str, pool: UserPool) -> Settings:
    """Explicit settings for an app under test: documents served, quotas off (the quota tests turn
    them on), so tests that create many campaigns or payments as one user are not throttled."""
    return Settings(
        aws_region=REGION,
        fundings_table=tables[contract.FUNDINGS_TABLE.env_var],
        payments_table=tables[contract.PAYMENTS_TABLE.env_var],
        idempotency_table=tables[contract.IDEMPOTENCY_TABLE.env_var],
        payments_topic_arn=topic_arn,
        cognito_user_pool_id=pool.pool_id,
        cognito_app_client_id=pool.client_id,
        api_docs=True,
        quota_payments_per_minute=0,
        quota_payments_per_campaign_per_day=0,
        quota_campaigns_per_day=0,
    )


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def campaign_body(days: int = 30, **overrides: Any) -> dict[str, Any]:
    """A valid create/replace body: started an hour ago, lasting `days`."""
    start = datetime.now(UTC) - timedelta(hours=1)
    end = start + timedelta(days=days)
    body: dict[str, Any] = {
        "title": "Solar lamps for the village school",
        "description": "Forty lamps, installed by volunteers.",
        "goalAmount": 1_000_000,
        "minAmount": 1_000,
        "maxAmount": 500_000,
        "startDate": to_iso_utc(start),
        "endDate": to_iso_utc(end),
        "duration": days,
        "status": "ACTIVE",
        "fundingAmount": 0,
    }
    body.update(overrides)
    return body


def payment_body(funding_id: str, amount: int = 10_000, method: str = "CARD") -> dict[str, Any]:
    """A valid POST /api/payments body."""
    return {"status": 1, "payload": {"fundingId": funding_id, "amount": amount, "paymentMethod": method}}


def sign_token(claims: dict[str, Any], *, kid: str = "dummy", foreign_key: bool = False) -> str:
    """A JWT signed with the emulator pool's private key (or a stranger's), for claims moto never issues."""
    if foreign_key:
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def claims_for(settings: Settings, sub: str = "user-1", **overrides: Any) -> dict[str, Any]:
    """Claims of a valid ID token for the app's pool and client."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": sub,
        "aud": settings.cognito_app_client_id,
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}
