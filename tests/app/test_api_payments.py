"""POST /api/payments and GET /api/payments/{id}: PENDING write, the published event, campaign rules,
idempotency, and a failed publication that leaves the payment PENDING and says so."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from app.idempotency import derived_resource_id, fingerprint, record_id
from lambdas.shared import contract
from lambdas.shared.contract import CampaignState
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api
from tests.app.test_api_campaigns import create, set_state


def stored_payment(api: Api, payment_id: str) -> dict[str, Any] | None:
    return api.emulator.dynamodb.get_item(
        TableName=api.settings.payments_table, Key={"paymentId": {"S": payment_id}}
    ).get("Item")


def payments_in_table(api: Api) -> list[dict[str, Any]]:
    return api.emulator.dynamodb.scan(TableName=api.settings.payments_table)["Items"]


def test_a_payment_is_stored_pending_and_requested_on_the_topic(api: Api) -> None:
    owner, backer = api.user(), api.user()
    funding_id = create(api, owner)
    response = api.client.post(
        "/api/payments", json=payment_body(funding_id, 25_000), headers=api.auth(backer)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    payment_id = body["paymentId"]
    assert body["status"] == 201
    assert body["payload"]["state"] == "PENDING"
    assert body["payload"]["publication"] == "published"
    assert response.headers["Location"] == f"/api/payments/{payment_id}"

    item = stored_payment(api, payment_id)
    assert item is not None
    assert item["state"] == {"S": "PENDING"}
    assert item["amount"] == {"N": "25000"}
    assert item["userId"] == {"S": backer["sub"]}
    assert item["fundingId"] == {"S": funding_id}
    assert item["paymentMethod"] == {"S": "CARD"}
    assert item["createdAt"] == item["updatedAt"]
    assert item["createdAt"]["S"].endswith("Z")

    [message] = api.published()
    event = json.loads(message["Body"])
    assert set(event) == {
        "eventId", "type", "occurredAt", "paymentId", "fundingId", "userId", "amount", "paymentMethod"
    }  # fmt: skip
    assert contract.parse_event(event) == event
    assert event["type"] == "payment.requested"
    assert (event["paymentId"], event["fundingId"], event["userId"]) == (
        payment_id,
        funding_id,
        backer["sub"],
    )
    assert event["amount"] == 25_000 and event["paymentMethod"] == "CARD"
    assert message["MessageAttributes"]["type"]["StringValue"] == "payment.requested"


def test_the_backer_reads_the_payment_and_no_one_else(api: Api) -> None:
    owner, backer = api.user(), api.user()
    funding_id = create(api, owner)
    payment_id = api.client.post(
        "/api/payments", json=payment_body(funding_id), headers=api.auth(backer)
    ).json()["paymentId"]

    response = api.client.get(f"/api/payments/{payment_id}", headers=api.auth(backer, "AccessToken"))
    assert response.status_code == 200
    payload = response.json()["payload"]
    assert set(payload) == {
        "paymentId", "fundingId", "amount", "paymentMethod", "state", "createdAt", "updatedAt", "capturedAt"
    }  # fmt: skip
    assert payload["capturedAt"] is None

    assert api.client.get(f"/api/payments/{payment_id}", headers=api.auth(owner)).status_code == 403
    assert api.client.get(f"/api/payments/{payment_id}").status_code == 401
    assert api.client.get("/api/payments/unknown", headers=api.auth(backer)).status_code == 404


def test_a_captured_payment_shows_captured_at(api: Api) -> None:
    backer = api.user()
    funding_id = create(api, api.user())
    payment_id = api.client.post(
        "/api/payments", json=payment_body(funding_id), headers=api.auth(backer)
    ).json()["paymentId"]
    api.emulator.dynamodb.update_item(
        TableName=api.settings.payments_table,
        Key={"paymentId": {"S": payment_id}},
        UpdateExpression="SET #s = :s, capturedAt = :t",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "CAPTURED"}, ":t": {"S": "2030-01-01T00:00:00.000Z"}},
    )
    payload = api.client.get(f"/api/payments/{payment_id}", headers=api.auth(backer)).json()["payload"]
    assert (payload["state"], payload["capturedAt"]) == ("CAPTURED", "2030-01-01T00:00:00.000Z")


@pytest.mark.parametrize(
    ("amount", "rule"), [(999, "amount_at_least_min_amount"), (500_001, "amount_at_most_max_amount")]
)
def test_amount_must_be_within_the_campaigns_bounds(api: Api, amount: int, rule: str) -> None:
    funding_id = create(api, api.user())
    backer = api.user()
    response = api.client.post(
        "/api/payments", json=payment_body(funding_id, amount), headers=api.auth(backer)
    )
    assert response.status_code == 422
    detail = response.json()["payload"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("payload.amount", rule)
    for edge in (1_000, 500_000):
        ok = api.client.post("/api/payments", json=payment_body(funding_id, edge), headers=api.auth(backer))
        assert ok.status_code == 201
    assert len(payments_in_table(api)) == 2


def test_payments_to_absent_or_deleted_campaigns_are_404(api: Api) -> None:
    owner, backer = api.user(), api.user()
    response = api.client.post("/api/payments", json=payment_body("missing"), headers=api.auth(backer))
    assert response.status_code == 404
    assert response.json()["payload"]["details"][0]["field"] == "payload.fundingId"
    funding_id = create(api, owner)
    api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner))
    response = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(backer))
    assert response.status_code == 404
    assert payments_in_table(api) == []


@pytest.mark.parametrize("state", [CampaignState.SUCCEEDED, CampaignState.FAILED])
def test_closed_campaigns_take_no_payments(api: Api, state: CampaignState) -> None:
    funding_id = create(api, api.user())
    set_state(api, funding_id, state)
    response = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(api.user()))
    assert response.status_code == 409
    assert response.json()["payload"]["error"] == "campaign_not_open"
    assert payments_in_table(api) == [] and api.published() == []


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        ("2090-01-01T00:00:00.000Z", "2090-02-01T00:00:00.000Z", "campaign_not_started"),
        ("2020-01-01T00:00:00.000Z", "2020-02-01T00:00:00.000Z", "campaign_ended"),
    ],
)
def test_payments_only_between_start_and_end(api: Api, start: str, end: str, error: str) -> None:
    funding_id = create(api, api.user())
    api.emulator.dynamodb.update_item(
        TableName=api.settings.fundings_table,
        Key={"fundingId": {"S": funding_id}},
        UpdateExpression="SET startDate = :s, endDate = :e",
        ExpressionAttributeValues={":s": {"S": start}, ":e": {"S": end}},
    )
    response = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(api.user()))
    assert response.status_code == 409
    assert response.json()["payload"]["error"] == error


def test_a_failed_publication_leaves_the_payment_pending_and_says_so(api: Api) -> None:
    funding_id = create(api, api.user())
    api.emulator.sns.delete_topic(TopicArn=api.settings.payments_topic_arn)
    response = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(api.user()))
    assert response.status_code == 201
    payload = response.json()["payload"]
    assert payload["publication"] == "deferred"
    assert "re-published" in payload["message"]
    item = stored_payment(api, payload["paymentId"])
    assert item is not None and item["state"] == {"S": "PENDING"}


def test_an_unreachable_topic_also_defers(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    funding_id = create(api, api.user())
    publisher = api.app.state.services.publisher

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")

    monkeypatch.setattr(publisher._sns, "publish", unreachable)
    response = api.client.post("/api/payments", json=payment_body(funding_id), headers=api.auth(api.user()))
    assert response.status_code == 201
    assert response.json()["payload"]["publication"] == "deferred"
    assert len(payments_in_table(api)) == 1


def test_same_key_and_body_returns_the_first_answer(api: Api) -> None:
    funding_id = create(api, api.user())
    backer = api.user()
    headers = {**api.auth(backer), "Idempotency-Key": "pay-once"}
    first = api.client.post("/api/payments", json=payment_body(funding_id), headers=headers)
    second = api.client.post("/api/payments", json=payment_body(funding_id), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(payments_in_table(api)) == 1
    assert len(api.published()) == 1

    record = api.emulator.dynamodb.get_item(
        TableName=api.settings.idempotency_table, Key={"id": {"S": f"api#{backer['sub']}#pay-once"}}
    )["Item"]
    assert record["status"] == {"S": "COMPLETED"}
    assert 86_000 < int(record["expiration"]["N"]) - time.time() <= 86_400


def test_same_key_with_another_body_is_a_409(api: Api) -> None:
    funding_id = create(api, api.user())
    headers = {**api.auth(api.user()), "Idempotency-Key": "pay-twice"}
    assert api.client.post("/api/payments", json=payment_body(funding_id), headers=headers).status_code == 201
    other = api.client.post("/api/payments", json=payment_body(funding_id, 20_000), headers=headers)
    assert other.status_code == 409
    assert other.json()["payload"]["error"] == "idempotency_key_reused"
    assert "different request" in other.json()["payload"]["message"]
    assert len(payments_in_table(api)) == 1


def test_keys_are_per_user(api: Api) -> None:
    funding_id = create(api, api.user())
    for backer in (api.user(), api.user()):
        headers = {**api.auth(backer), "Idempotency-Key": "shared-key"}
        assert (
            api.client.post("/api/payments", json=payment_body(funding_id), headers=headers).status_code
            == 201
        )
    assert len(payments_in_table(api)) == 2


def test_a_refused_request_does_not_burn_its_key(api: Api) -> None:
    funding_id = create(api, api.user())
    headers = {**api.auth(api.user()), "Idempotency-Key": "retry-me"}
    refused = api.client.post("/api/payments", json=payment_body(funding_id, 1), headers=headers)
    assert refused.status_code == 422
    accepted = api.client.post("/api/payments", json=payment_body(funding_id, 5_000), headers=headers)
    assert accepted.status_code == 201


def claim(api: Api, user_id: str, key: str, body: dict[str, Any], in_progress_until: int) -> None:
    now = int(time.time())
    api.emulator.dynamodb.put_item(
        TableName=api.settings.idempotency_table,
        Item={
            "id": {"S": record_id(user_id, key)},
            "status": {"S": "INPROGRESS"},
            "fingerprint": {"S": fingerprint("POST /api/payments", body)},
            "expiration": {"N": str(now + 3600)},
            "inProgressExpiration": {"N": str(in_progress_until)},
        },
    )


def test_a_request_still_in_progress_is_a_409_with_retry_after(api: Api) -> None:
    funding_id = create(api, api.user())
    backer = api.user()
    body = payment_body(funding_id)
    claim(api, backer["sub"], "busy", body, in_progress_until=int(time.time()) + 60)
    response = api.client.post(
        "/api/payments", json=body, headers={**api.auth(backer), "Idempotency-Key": "busy"}
    )
    assert response.status_code == 409
    assert response.json()["payload"]["error"] == "idempotency_request_in_progress"
    assert response.headers["Retry-After"] == "1"
    assert payments_in_table(api) == []


def test_a_dead_claim_is_taken_over_without_a_duplicate_payment(api: Api) -> None:
    """The first attempt stored the payment and died before completing its idempotency record."""
    funding_id = create(api, api.user())
    backer = api.user()
    body = payment_body(funding_id)
    claim(api, backer["sub"], "crashed", body, in_progress_until=int(time.time()) - 1)
    payment_id = derived_resource_id(backer["sub"], "POST /api/payments", "crashed")
    api.emulator.dynamodb.put_item(
        TableName=api.settings.payments_table,
        Item={
            "paymentId": {"S": payment_id},
            "fundingId": {"S": funding_id},
            "userId": {"S": backer["sub"]},
            "amount": {"N": "10000"},
            "paymentMethod": {"S": "CARD"},
            "state": {"S": "PENDING"},
            "createdAt": {"S": "2026-01-01T00:00:00.000Z"},
            "updatedAt": {"S": "2026-01-01T00:00:00.000Z"},
        },
    )
    response = api.client.post(
        "/api/payments", json=body, headers={**api.auth(backer), "Idempotency-Key": "crashed"}
    )
    assert response.status_code == 201
    assert response.json()["paymentId"] == payment_id
    assert len(payments_in_table(api)) == 1
    [message] = api.published()  # the possibly lost request is published (again)
    assert json.loads(message["Body"])["paymentId"] == payment_id


def expire_key(api: Api, user_id: str, key: str, *, deleted: bool) -> None:
    """What a day does to a key's record: TTL passes (and DynamoDB eventually deletes the item)."""
    key_of_record = {"id": {"S": record_id(user_id, key)}}
    if deleted:
        api.emulator.dynamodb.delete_item(TableName=api.settings.idempotency_table, Key=key_of_record)
    else:
        api.emulator.dynamodb.update_item(
            TableName=api.settings.idempotency_table,
            Key=key_of_record,
            UpdateExpression="SET expiration = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )


@pytest.mark.parametrize("deleted", [False, True])
def test_a_reused_key_with_another_body_is_a_409_after_its_record_expired(api: Api, deleted: bool) -> None:
    """Issue 13 item 9: the same key with another campaign and amount got 201 and the *old* payment."""
    backer = api.user()
    first_campaign, other_campaign = create(api, api.user()), create(api, api.user())
    headers = {**api.auth(backer), "Idempotency-Key": "reused-after-a-day"}
    first = api.client.post("/api/payments", json=payment_body(first_campaign, 10_000), headers=headers)
    assert first.status_code == 201
    expire_key(api, backer["sub"], "reused-after-a-day", deleted=deleted)

    other = api.client.post("/api/payments", json=payment_body(other_campaign, 20_000), headers=headers)
    assert other.status_code == 409, other.text
    payload = other.json()["payload"]
    assert payload["error"] == "idempotency_key_reused"
    assert first.json()["paymentId"] in payload["message"] and "new key per request" in payload["message"]
    assert len(payments_in_table(api)) == 1
    other_item = api.emulator.dynamodb.get_item(
        TableName=api.settings.fundings_table, Key={"fundingId": {"S": other_campaign}}
    )["Item"]
    assert "termsFrozenAt" not in other_item  # a refused reuse freezes nothing


def test_the_same_body_under_an_expired_key_gets_the_first_payment_back(api: Api) -> None:
    backer = api.user()
    funding_id = create(api, api.user())
    headers = {**api.auth(backer), "Idempotency-Key": "same-again"}
    first = api.client.post("/api/payments", json=payment_body(funding_id), headers=headers)
    expire_key(api, backer["sub"], "same-again", deleted=True)
    again = api.client.post("/api/payments", json=payment_body(funding_id), headers=headers)
    assert again.status_code == 201
    assert again.json()["paymentId"] == first.json()["paymentId"]
    assert len(payments_in_table(api)) == 1
    stored = stored_payment(api, first.json()["paymentId"])
    assert stored is not None
    assert stored["requestHash"] == {"S": fingerprint("POST /api/payments", payment_body(funding_id))}


def test_a_reused_campaign_key_with_another_body_is_a_409_after_its_record_expired(api: Api) -> None:
    owner = api.user()
    headers = {**api.auth(owner), "Idempotency-Key": "campaign-key"}
    body = campaign_body(title="First")
    first = api.client.post("/api/funding", json=body, headers=headers)
    assert first.status_code == 201
    expire_key(api, owner["sub"], "campaign-key", deleted=True)
    other = api.client.post("/api/funding", json={**body, "title": "Second"}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.json()["payload"]["error"] == "idempotency_key_reused"
    same = api.client.post("/api/funding", json=body, headers=headers)
    assert same.status_code == 201 and same.json()["fundingId"] == first.json()["fundingId"]
    titles = [c["title"] for c in api.client.get("/api/fundings").json()["payload"]]
    assert titles == ["First"]


def test_the_seeds_example_payment_is_accepted_stored_and_published_as_sent(api: Api) -> None:
    """Issue 13 item 12: DESIGN §2's body with `"paymentMethod": "credit card"` was a 422."""
    funding_id = create(api, api.user())
    body = {
        "status": 1,
        "payload": {"fundingId": funding_id, "amount": 10_000, "paymentMethod": "credit card"},
    }
    response = api.client.post("/api/payments", json=body, headers=api.auth(api.user()))
    assert response.status_code == 201, response.text
    assert response.json()["payload"]["paymentMethod"] == "credit card"
    stored = stored_payment(api, response.json()["paymentId"])
    assert stored is not None and stored["paymentMethod"] == {"S": "credit card"}
    [message] = api.published()
    assert json.loads(message["Body"])["paymentMethod"] == "credit card"
