"""Start-up configuration, `app.main:app`, structured logs, and failures of AWS itself (503, 500)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import app.main as main
from app.logs import JsonFormatter, configure_logging
from app.settings import ConfigurationError, Settings, load_settings
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api
from tests.app.test_api_campaigns import create

VALID_ENV = {
    "AWS_REGION": "ap-northeast-2",
    "FUNDINGS_TABLE": "crowdfunding-fundings",
    "PAYMENTS_TABLE": "crowdfunding-payments",
    "IDEMPOTENCY_TABLE": "crowdfunding-idempotency",
    "PAYMENTS_TOPIC_ARN": "arn:aws:sns:ap-northeast-2:123456789012:payments",
    "COGNITO_USER_POOL_ID": "ap-northeast-2_AbCdEf123",
    "COGNITO_APP_CLIENT_ID": "4h2kq0examplec1ient",
}
OPTIONAL_ENV = ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "COGNITO_JWKS_URL", "COGNITO_ISSUER")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A valid environment; tests edit it."""
    for name in (*VALID_ENV, *OPTIONAL_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in VALID_ENV.items():
        monkeypatch.setenv(name, value)
    yield monkeypatch


def test_settings_come_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.fundings_table == "crowdfunding-fundings"
    assert settings.aws_endpoint_url is None
    assert settings.issuer == "https://cognito-idp.ap-northeast-2.amazonaws.com/ap-northeast-2_AbCdEf123"
    assert settings.jwks_url == settings.issuer + "/.well-known/jwks.json"


def test_region_falls_back_to_aws_default_region(environment: pytest.MonkeyPatch) -> None:
    environment.delenv("AWS_REGION")
    environment.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert load_settings().aws_region == "eu-west-1"
    environment.setenv("AWS_REGION", "us-west-2")
    assert load_settings().aws_region == "us-west-2"


def test_with_the_emulator_the_keys_come_from_its_endpoint(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")
    settings = load_settings()
    assert settings.jwks_url == "http://127.0.0.1:5000/ap-northeast-2_AbCdEf123/.well-known/jwks.json"
    assert settings.issuer.startswith("https://cognito-idp.ap-northeast-2.amazonaws.com/")  # what moto signs
    environment.setenv("COGNITO_JWKS_URL", "https://keys.example.com/jwks.json")
    environment.setenv("COGNITO_ISSUER", "https://issuer.example.com")
    assert (load_settings().jwks_url, load_settings().issuer) == (
        "https://keys.example.com/jwks.json",
        "https://issuer.example.com",
    )


@pytest.mark.parametrize("missing", sorted(VALID_ENV))
def test_each_missing_variable_is_named(environment: pytest.MonkeyPatch, missing: str) -> None:
    environment.delenv(missing)
    with pytest.raises(ConfigurationError, match=rf"{missing}\b.* is not set"):
        load_settings()


def test_empty_variables_count_as_missing_and_all_are_listed(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("FUNDINGS_TABLE", "")
    environment.delenv("PAYMENTS_TOPIC_ARN")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "FUNDINGS_TABLE is not set" in str(raised.value)
    assert "PAYMENTS_TOPIC_ARN is not set" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_REGION", "Seoul"),
        ("FUNDINGS_TABLE", "no spaces allowed"),
        ("PAYMENTS_TABLE", "ab"),
        ("PAYMENTS_TOPIC_ARN", "payments"),
        ("PAYMENTS_TOPIC_ARN", "arn:aws:sqs:ap-northeast-2:123456789012:payments"),
        ("COGNITO_USER_POOL_ID", "AbCdEf123"),
        ("COGNITO_APP_CLIENT_ID", "has spaces"),
        ("AWS_ENDPOINT_URL", "localhost:5000"),
        ("COGNITO_JWKS_URL", "file:///etc/passwd"),
    ],
)
def test_malformed_variables_are_named(environment: pytest.MonkeyPatch, name: str, value: str) -> None:
    environment.setenv(name, value)
    with pytest.raises(ConfigurationError, match=rf"{name}\b.* is invalid"):
        load_settings()


def test_module_app_is_built_from_the_environment_on_first_use(environment: pytest.MonkeyPatch) -> None:
    environment.setattr(main, "_app", None)
    environment.setattr(main, "configure_logging", lambda: None)
    environment.delenv("COGNITO_APP_CLIENT_ID")
    with pytest.raises(ConfigurationError, match="COGNITO_APP_CLIENT_ID"):
        _ = main.app
    environment.setenv("COGNITO_APP_CLIENT_ID", "4h2kq0examplec1ient")
    application = main.app
    assert application is main.app
    assert application.state.settings == load_settings()
    with pytest.raises(AttributeError):
        _ = main.nothing_here


def test_settings_can_be_given_explicitly() -> None:
    settings = Settings(
        **{k.lower(): v for k, v in VALID_ENV.items() if k != "AWS_REGION"}, aws_region="us-east-1"
    )
    assert settings.aws_region == "us-east-1"


# --- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Route logging through the service's JSON set-up into a buffer; restore pytest's afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)


def parse(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_every_line_of_a_request_is_json_with_its_request_id_and_no_token(
    api: Api, log_lines: io.StringIO
) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    log_lines.truncate(0)
    log_lines.seek(0)
    response = api.client.post(
        "/api/payments",
        json=payment_body(funding_id),
        headers={**api.auth(owner), "X-Request-Id": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    lines = [line for line in parse(log_lines) if line["logger"].startswith("app.")]  # not the test client's
    assert {line["message"] for line in lines} >= {"payment accepted", "request"}
    assert all(line["requestId"] == "trace-123" for line in lines)
    access = next(line for line in lines if line["message"] == "request")
    assert access["route"] == "/api/payments" and access["statusCode"] == 201 and access["durationMs"] >= 0
    text = log_lines.getvalue()
    assert owner["IdToken"] not in text and owner["IdToken"].split(".")[1] not in text
    assert owner["sub"] not in text


def test_requests_without_an_id_get_one(api: Api, log_lines: io.StringIO) -> None:
    response = api.client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and " " not in request_id
    assert parse(log_lines)[-1]["requestId"] == request_id


def test_lines_outside_requests_carry_a_placeholder_id() -> None:
    record = logging.makeLogRecord({"msg": "starting", "levelname": "INFO", "name": "x", "port": 8000})
    line = json.loads(JsonFormatter().format(record))
    assert (line["requestId"], line["message"], line["port"]) == ("-", "starting", 8000)


# --- AWS failing -----------------------------------------------------------------------------


def throttled(**_: Any) -> None:
    raise ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem"
    )


def test_throttling_is_a_503_envelope(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.app.state.services.store._db, "get_item", throttled)
    response = api.client.get("/api/funding/some-id")
    assert response.status_code == 503
    assert response.json()["payload"]["error"] == "dependency_unavailable"


def test_an_unexpected_error_is_a_logged_500_envelope(
    api: Api, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    def broken(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "SomethingNew", "Message": "?"}}, "GetItem")

    monkeypatch.setattr(api.app.state.services.store._db, "get_item", broken)
    response = api.client.get("/api/funding/some-id", headers={"X-Request-Id": "boom-1"})
    assert response.status_code == 500
    assert response.json()["payload"]["error"] == "internal_error"
    error = next(line for line in parse(log_lines) if line["level"] == "ERROR")
    assert error["requestId"] == "boom-1" and "SomethingNew" in error["exception"]


def test_a_missing_table_is_a_503_not_a_500(api: Api) -> None:
    api.emulator.dynamodb.delete_table(TableName=api.settings.fundings_table)
    response = api.client.post("/api/funding", json=campaign_body(), headers=api.auth(api.user()))
    assert response.status_code == 503
