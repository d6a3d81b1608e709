"""The service's configuration, read from environment variables only.

Every value the infrastructure injects is validated here so a misconfigured task fails at start-up,
with a message naming the variable, instead of answering requests with 500s later.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdas.shared import contract

ENV_AWS_REGION = "AWS_REGION"
ENV_AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
ENV_AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_COGNITO_JWKS_URL = "COGNITO_JWKS_URL"
ENV_COGNITO_ISSUER = "COGNITO_ISSUER"
ENV_API_DOCS = "API_DOCS"
ENV_QUOTA_PAYMENTS_PER_MINUTE = "QUOTA_PAYMENTS_PER_MINUTE"
ENV_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY = "QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY"
ENV_QUOTA_CAMPAIGNS_PER_DAY = "QUOTA_CAMPAIGNS_PER_DAY"

DEFAULT_QUOTA_PAYMENTS_PER_MINUTE = 10
DEFAULT_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY = 20
DEFAULT_QUOTA_CAMPAIGNS_PER_DAY = 10
"""Per-user quotas when the environment says nothing; the stack passes its own (infra/config.py has
the same defaults, a test keeps them equal). 0 means unlimited."""
MAX_QUOTA = 1_000_000

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_USER_POOL_ID = re.compile(r"^(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2})_[A-Za-z0-9]+$")
_APP_CLIENT_ID = re.compile(r"^[\w+]{1,128}$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

TableName = Annotated[str, Field(pattern=_TABLE_NAME.pattern)]


class ConfigurationError(RuntimeError):
    """Raised at start-up when an environment variable is missing or malformed."""


class Settings(BaseSettings):
    """Where the service finds its tables, topic and user pool. Built from the environment or explicitly."""

    model_config = SettingsConfigDict(
        case_sensitive=True, populate_by_name=True, extra="ignore", frozen=True, env_ignore_empty=True
    )

    aws_region: str = Field(validation_alias=AliasChoices(ENV_AWS_REGION, ENV_AWS_DEFAULT_REGION))
    aws_endpoint_url: str | None = Field(default=None, validation_alias=ENV_AWS_ENDPOINT_URL)
    fundings_table: TableName = Field(validation_alias=contract.FUNDINGS_TABLE.env_var)
    payments_table: TableName = Field(validation_alias=contract.PAYMENTS_TABLE.env_var)
    idempotency_table: TableName = Field(validation_alias=contract.IDEMPOTENCY_TABLE.env_var)
    payments_topic_arn: str = Field(
        pattern=_SNS_TOPIC_ARN.pattern, validation_alias=contract.ENV_PAYMENTS_TOPIC_ARN
    )
    cognito_user_pool_id: str = Field(
        pattern=_USER_POOL_ID.pattern, validation_alias=contract.ENV_COGNITO_USER_POOL_ID
    )
    cognito_app_client_id: str = Field(
        pattern=_APP_CLIENT_ID.pattern, validation_alias=contract.ENV_COGNITO_APP_CLIENT_ID
    )
    cognito_jwks_url: str | None = Field(default=None, validation_alias=ENV_COGNITO_JWKS_URL)
    cognito_issuer: str | None = Field(default=None, validation_alias=ENV_COGNITO_ISSUER)
    api_docs: bool = Field(
        default=False,
        validation_alias=ENV_API_DOCS,
        description="Serve /docs, /redoc and /openapi.json. Off unless asked for (prod keeps it off).",
    )
    quota_payments_per_minute: int = Field(
        default=DEFAULT_QUOTA_PAYMENTS_PER_MINUTE,
        ge=0,
        le=MAX_QUOTA,
        validation_alias=ENV_QUOTA_PAYMENTS_PER_MINUTE,
    )
    quota_payments_per_campaign_per_day: int = Field(
        default=DEFAULT_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY,
        ge=0,
        le=MAX_QUOTA,
        validation_alias=ENV_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY,
    )
    quota_campaigns_per_day: int = Field(
        default=DEFAULT_QUOTA_CAMPAIGNS_PER_DAY,
        ge=0,
        le=MAX_QUOTA,
        validation_alias=ENV_QUOTA_CAMPAIGNS_PER_DAY,
    )

    @field_validator("aws_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("must be an AWS region name such as eu-west-1")
        return value

    @field_validator("aws_endpoint_url", "cognito_jwks_url", "cognito_issuer")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @property
    def issuer(self) -> str:
        """The `iss` claim Cognito (and moto's emulation of it) puts in the pool's tokens."""
        if self.cognito_issuer:
            return self.cognito_issuer
        return f"https://cognito-idp.{self.aws_region}.amazonaws.com/{self.cognito_user_pool_id}"

    @property
    def jwks_url(self) -> str:
        """Where the pool's public keys are: given, the emulator's path, or derived from the issuer."""
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        if self.aws_endpoint_url:
            # moto serves every pool's keys at <endpoint>/<poolId>/.well-known/jwks.json.
            return f"{self.aws_endpoint_url}/{self.cognito_user_pool_id}/.well-known/jwks.json"
        return f"{self.issuer}/.well-known/jwks.json"


_ENV_NAME_OF_FIELD: dict[str, str] = {
    "aws_region": f"{ENV_AWS_REGION} (or {ENV_AWS_DEFAULT_REGION})",
    "aws_endpoint_url": ENV_AWS_ENDPOINT_URL,
    "fundings_table": contract.FUNDINGS_TABLE.env_var,
    "payments_table": contract.PAYMENTS_TABLE.env_var,
    "idempotency_table": contract.IDEMPOTENCY_TABLE.env_var,
    "payments_topic_arn": contract.ENV_PAYMENTS_TOPIC_ARN,
    "cognito_user_pool_id": contract.ENV_COGNITO_USER_POOL_ID,
    "cognito_app_client_id": contract.ENV_COGNITO_APP_CLIENT_ID,
    "cognito_jwks_url": ENV_COGNITO_JWKS_URL,
    "cognito_issuer": ENV_COGNITO_ISSUER,
    "api_docs": ENV_API_DOCS,
    "quota_payments_per_minute": ENV_QUOTA_PAYMENTS_PER_MINUTE,
    "quota_payments_per_campaign_per_day": ENV_QUOTA_PAYMENTS_PER_CAMPAIGN_PER_DAY,
    "quota_campaigns_per_day": ENV_QUOTA_CAMPAIGNS_PER_DAY,
}
_ENV_NAME_TO_FIELD = {
    **{env.split(" ")[0]: name for name, env in _ENV_NAME_OF_FIELD.items()},
    ENV_AWS_DEFAULT_REGION: "aws_region",
}


def load_settings() -> Settings:
    """Read the settings from the environment; raise ConfigurationError naming every bad variable."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            env_name = _ENV_NAME_OF_FIELD.get(_ENV_NAME_TO_FIELD.get(name, name), name)
            reason = "is not set" if error["type"] == "missing" else f"is invalid: {error['msg']}"
            problems.append(f"{env_name} {reason}")
        raise ConfigurationError("invalid service configuration: " + "; ".join(problems)) from None
