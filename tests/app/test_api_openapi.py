"""The OpenAPI document is the contract: every operation lists each status it can return, and a bounded,
seeded schemathesis run finds no 5xx and no undocumented status, header or body shape."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from app.settings import Settings
from tests.app.conftest import Api

_WRITE_WITH_BODY = {"400", "401", "413", "415", "422", "500", "503"}
_READ = {"422", "500", "503"}
EXPECTED_STATUSES = {
    ("get", "/healthz"): {"200"},
    ("post", "/api/funding"): {"201", "409", "429"} | _WRITE_WITH_BODY,
    ("put", "/api/funding"): {"201", "403", "404", "409"} | _WRITE_WITH_BODY,
    ("put", "/api/funding/{fundingId}"): {"201", "403", "404", "409"} | _WRITE_WITH_BODY,
    ("get", "/api/fundings"): {"200"} | _READ,
    ("get", "/api/funding/{fundingId}"): {"200", "404"} | _READ,
    ("delete", "/api/fundings/{fundingId}"): {"200", "401", "403", "404", "409"} | _READ,
    ("post", "/api/payments"): {"201", "404", "409", "429"} | _WRITE_WITH_BODY,
    ("get", "/api/payments/{paymentId}"): {"200", "401", "403", "404"} | _READ,
}


def test_every_operation_documents_every_status_it_returns(shared_api: Api) -> None:
    document = shared_api.client.get("/openapi.json").json()
    operations = {
        (method, path): set(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert operations == EXPECTED_STATUSES
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    for (method, path), statuses in operations.items():
        for status in statuses - {"200", "201"}:
            schema = document["paths"][path][method]["responses"][status]["content"]["application/json"][
                "schema"
            ]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)
    assert set(envelope["properties"]) == {"status", "payload"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def success_schema(document: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    ref = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"][
        "$ref"
    ]
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_put_and_delete_are_declared_with_the_seeds_success_shapes(shared_api: Api) -> None:
    """Issue 13 item 12: PUT 201 and DELETE 200, each with payload "success" and the campaign beside."""
    document = shared_api.client.get("/openapi.json").json()
    for method, path, status in (
        ("put", "/api/funding", "201"),
        ("put", "/api/funding/{fundingId}", "201"),
        ("delete", "/api/fundings/{fundingId}", "200"),
    ):
        schema = success_schema(document, method, path, status)
        assert schema["properties"]["payload"]["const"] == "success", (method, path)
        assert schema["properties"]["funding"] == {"$ref": "#/components/schemas/Campaign"}
        assert schema["properties"]["status"]["default"] == int(status)
    deleting = document["paths"]["/api/fundings/{fundingId}"]["delete"]["description"]
    assert "refunds its CAPTURED payments" in deleting and "endDate" in deleting
    method = document["components"]["schemas"]["PaymentDetails"]["properties"]["paymentMethod"]
    assert (method["minLength"], method["maxLength"]) == (1, 64) and "pattern" not in method


def test_healthz_touches_nothing(shared_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    services = shared_api.app.state.services

    def forbidden(*_: Any, **__: Any) -> None:
        raise AssertionError("the health check must not call AWS")

    monkeypatch.setattr(services.store, "_db", forbidden)
    monkeypatch.setattr(services.publisher, "_sns", forbidden)
    response = shared_api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": 200, "payload": {"status": "ok"}}


def _document() -> dict[str, Any]:
    """The app's own OpenAPI document. Building an app touches no AWS, so collection needs no emulator;
    the cases are then sent to the module's app running on moto."""
    dummy = Settings(
        aws_region="us-east-1",
        fundings_table="fundings",
        payments_table="payments",
        idempotency_table="idempotency",
        payments_topic_arn="arn:aws:sns:us-east-1:123456789012:payments",
        cognito_user_pool_id="us-east-1_example",
        cognito_app_client_id="exampleclient",
    )
    return create_app(dummy, configure_logs=False).openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_finds_no_server_error_or_undocumented_response(case: Any, shared_api: Api) -> None:
    case.call_and_validate(
        app=shared_api.app,
        headers=shared_api.auth(shared_api.any_user()),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
