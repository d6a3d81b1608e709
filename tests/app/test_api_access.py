"""The API's declared AWS access (app/access.py) is exactly what it calls: every endpoint and path is
driven while the service's own clients record each operation; a call outside the declaration would
be an AccessDenied in production, a declared action never called a grant too many."""

from __future__ import annotations

from typing import Any

import pytest

import app.store
from app.access import ACCESS
from lambdas.shared import contract
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api, Emulator, running_api


class CallRecorder:
    """IAM actions per resource variable, from the parameters of each botocore call."""

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = tables
        self.used: dict[str, set[str]] = {}

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        if service == "dynamodb":
            variable = self.tables[params["TableName"]]
            action = f"dynamodb:{model.name}"
            if params.get("IndexName"):
                action += f"@{params['IndexName']}"
        else:
            variable, action = contract.ENV_PAYMENTS_TOPIC_ARN, f"{service}:{model.name}"
        self.used.setdefault(variable, set()).add(action)


def drive_every_path(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, backer = api.user(), api.user()
    keyed = {**api.auth(owner), "Idempotency-Key": "k-1"}
    funding_id = api.client.post("/api/funding", json=campaign_body(), headers=keyed).json()["fundingId"]
    api.client.post("/api/funding", json=campaign_body(), headers=keyed)  # replay
    api.client.get("/api/fundings")
    api.client.get("/api/fundings", params={"state": "OPEN"})
    api.client.get(f"/api/funding/{funding_id}")
    assert (
        api.client.put(
            f"/api/funding/{funding_id}", json=campaign_body(), headers=api.auth(owner)
        ).status_code
        == 201
    )
    paid = api.client.post(
        "/api/payments", json=payment_body(funding_id), headers={**api.auth(backer), "Idempotency-Key": "p-1"}
    )
    assert paid.status_code == 201
    api.client.get(f"/api/payments/{paid.json()['paymentId']}", headers=api.auth(backer))
    refused = api.client.post(
        "/api/payments", json=payment_body("missing"), headers={**api.auth(backer), "Idempotency-Key": "p-2"}
    )
    assert refused.status_code == 404  # its claim is released
    monkeypatch.setattr(app.store, "_old_item", lambda _exc: None)  # a claim answered without the item
    api.client.post(
        "/api/payments", json=payment_body(funding_id), headers={**api.auth(backer), "Idempotency-Key": "p-1"}
    )
    monkeypatch.undo()
    assert api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner)).status_code == 200


def test_the_api_calls_exactly_what_it_declares(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {
        "quota_payments_per_minute": 100,
        "quota_payments_per_campaign_per_day": 100,
        "quota_campaigns_per_day": 100,
    }
    with running_api(emulator, **limits) as api:
        settings = api.settings
        recorder = CallRecorder(
            {
                settings.fundings_table: contract.FUNDINGS_TABLE.env_var,
                settings.payments_table: contract.PAYMENTS_TABLE.env_var,
                settings.idempotency_table: contract.IDEMPOTENCY_TABLE.env_var,
            }
        )
        services = api.app.state.services
        for client in (services.store._db, services.publisher._sns):
            client.meta.events.register("before-parameter-build", recorder)
        drive_every_path(api, monkeypatch)
    declared = {variable: set(actions) for variable, actions in ACCESS.items()}
    assert recorder.used == declared
