"""Campaign endpoints: create, read, list with cursors, replace, soft delete, ownership, 404s."""

from __future__ import annotations

from typing import Any

from lambdas.shared import contract
from lambdas.shared.contract import CampaignState
from tests.app.api_testkit import campaign_body
from tests.app.conftest import Api


def create(api: Api, owner: dict[str, str], **overrides: Any) -> str:
    response = api.client.post("/api/funding", json=campaign_body(**overrides), headers=api.auth(owner))
    assert response.status_code == 201, response.text
    return str(response.json()["fundingId"])


def stored_campaign(api: Api, funding_id: str) -> dict[str, Any]:
    item = api.emulator.dynamodb.get_item(
        TableName=api.settings.fundings_table, Key={"fundingId": {"S": funding_id}}
    )["Item"]
    return item


def test_create_returns_201_success_id_and_location(api: Api) -> None:
    owner = api.user()
    response = api.client.post("/api/funding", json=campaign_body(fundingAmount=999), headers=api.auth(owner))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == 201
    assert body["payload"] == "success"
    assert response.headers["Location"] == f"/api/funding/{body['fundingId']}"
    assert response.headers["x-request-id"]


def test_create_stores_contract_attributes_normalized(api: Api) -> None:
    owner = api.user()
    body = campaign_body(
        startDate="2030-01-01T09:00:00+09:00", endDate="2030-01-31T00:00:00.5-05:00", duration=31
    )
    funding_id = create(api, owner, **body)
    item = stored_campaign(api, funding_id)
    assert item["startDate"] == {"S": "2030-01-01T00:00:00.000Z"}
    assert item["endDate"] == {"S": "2030-01-31T05:00:00.500Z"}
    assert item["state"] == {"S": "OPEN"}
    assert item["ownerId"] == {"S": owner["sub"]}
    assert item["fundingAmount"] == {"N": "0"}  # the client's 0 (or anything) is ignored
    assert item["goalAmount"] == {"N": "1000000"}
    assert item["status"] == {"S": "ACTIVE"}
    assert "goalReachedAt" not in item and "deletedAt" not in item
    assert item["createdAt"]["S"].endswith("Z") and len(item["createdAt"]["S"]) == 24


def test_integer_client_status_is_stored_as_given(api: Api) -> None:
    funding_id = create(api, api.user(), status=3)
    assert stored_campaign(api, funding_id)["status"] == {"N": "3"}
    assert api.client.get(f"/api/funding/{funding_id}").json()["payload"]["status"] == 3


def test_get_returns_the_representation(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    response = api.client.get(f"/api/funding/{funding_id}")
    assert response.status_code == 200
    payload = response.json()["payload"]
    assert payload["fundingId"] == funding_id
    assert payload["ownerId"] == owner["sub"]
    assert payload["state"] == "OPEN"
    assert payload["fundingAmount"] == 0
    assert payload["goalReachedAt"] is None
    expected_keys = {
        "fundingId", "ownerId", "title", "description", "goalAmount", "fundingAmount", "minAmount",
        "maxAmount", "duration", "startDate", "endDate", "status", "state", "createdAt", "updatedAt",
        "goalReachedAt", "deletedAt", "termsFrozenAt",
    }  # fmt: skip
    assert set(payload) == expected_keys


def test_get_unknown_campaign_is_a_404_envelope(api: Api) -> None:
    response = api.client.get("/api/funding/does-not-exist")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert response.json()["payload"]["error"] == "not_found"
    assert response.json()["payload"]["details"][0]["field"] == "fundingId"


def test_get_with_an_impossible_id_is_a_422(api: Api) -> None:
    response = api.client.get("/api/funding/" + "x" * 129)
    assert response.status_code == 422
    assert response.json()["payload"]["details"][0]["field"] == "fundingId"


def test_list_paginates_with_an_opaque_cursor_and_hides_deleted(api: Api) -> None:
    owner = api.user()
    created = {create(api, owner, title=f"campaign {i}") for i in range(7)}
    deleted = create(api, owner)
    assert api.client.delete(f"/api/fundings/{deleted}", headers=api.auth(owner)).status_code == 200

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = api.client.get("/api/fundings", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["payload"]) <= 3
        seen += [campaign["fundingId"] for campaign in body["payload"]]
        assert all("createdAt" in campaign for campaign in body["payload"])
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
        assert pages < 10
    assert sorted(seen) == sorted(created)  # each once, the deleted one never
    assert pages == 3


def test_list_by_state_uses_end_date_order(api: Api) -> None:
    owner = api.user()
    late = create(api, owner, **campaign_body(days=40))
    early = create(api, owner, **campaign_body(days=10))
    first = api.client.get("/api/fundings", params={"state": "OPEN", "limit": 1}).json()
    assert [c["fundingId"] for c in first["payload"]] == [early]
    second = api.client.get("/api/fundings", params={"state": "OPEN", "cursor": first["nextCursor"]}).json()
    assert [c["fundingId"] for c in second["payload"]] == [late]
    assert second["nextCursor"] is None
    assert api.client.get("/api/fundings", params={"state": "SUCCEEDED"}).json()["payload"] == []


def test_list_rejects_bad_limits_and_cursors(api: Api) -> None:
    for params, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not base64!"}, "cursor"),
        ({"cursor": "bm9wZQ"}, "cursor"),  # base64 of "nope"
        ({"cursor": "eyJ2IjoxLCJtIjoiYWxsIiwiayI6eyJmdW5kaW5nSWQiOjF9fQ"}, "cursor"),  # wrong key type
        ({"state": "PAUSED"}, "state"),
    ]:
        response = api.client.get("/api/fundings", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["payload"]["details"][0]["field"] == field


def test_a_cursor_of_one_listing_is_refused_by_another(api: Api) -> None:
    owner = api.user()
    create(api, owner)
    create(api, owner)
    cursor = api.client.get("/api/fundings", params={"limit": 1}).json()["nextCursor"]
    assert cursor
    response = api.client.get("/api/fundings", params={"state": "OPEN", "cursor": cursor})
    assert response.status_code == 422
    assert response.json()["payload"]["details"][0]["rule"] == "cursor_mismatch"


def test_owner_replaces_a_campaign_by_body_id_and_by_path(api: Api) -> None:
    """Issue 13 item 12: PUT answers 201 with payload "success" (the seed's table), campaign beside it."""
    owner = api.user()
    funding_id = create(api, owner)
    replaced = campaign_body(title="New title", goalAmount=2_000_000, fundingId=funding_id)
    response = api.client.put("/api/funding", json=replaced, headers=api.auth(owner))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["payload"], body["fundingId"]) == (201, "success", funding_id)
    assert body["funding"]["title"] == "New title"
    assert body["funding"]["goalAmount"] == 2_000_000

    response = api.client.put(
        f"/api/funding/{funding_id}", json=campaign_body(title="Third"), headers=api.auth(owner)
    )
    assert response.status_code == 201
    assert response.json()["payload"] == "success"
    stored = stored_campaign(api, funding_id)
    assert stored["title"] == {"S": "Third"}
    assert stored["fundingAmount"] == {"N": "0"}
    assert stored["state"] == {"S": "OPEN"}
    assert stored["updatedAt"]["S"] >= stored["createdAt"]["S"]


def test_put_without_body_id_or_with_a_different_one_is_a_422(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    response = api.client.put("/api/funding", json=campaign_body(), headers=api.auth(owner))
    assert response.status_code == 422
    assert response.json()["payload"]["details"][0]["field"] == "fundingId"
    response = api.client.put(
        f"/api/funding/{funding_id}", json=campaign_body(fundingId="other"), headers=api.auth(owner)
    )
    assert response.status_code == 422
    assert response.json()["payload"]["details"][0]["rule"] == "matches_path"


def test_only_the_owner_may_replace_or_delete(api: Api) -> None:
    owner, stranger = api.user(), api.user()
    funding_id = create(api, owner)
    response = api.client.put(f"/api/funding/{funding_id}", json=campaign_body(), headers=api.auth(stranger))
    assert response.status_code == 403
    assert response.json()["payload"]["error"] == "forbidden"
    response = api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(stranger))
    assert response.status_code == 403
    assert stored_campaign(api, funding_id)["state"] == {"S": "OPEN"}


def test_writes_to_unknown_campaigns_are_404s(api: Api) -> None:
    owner = api.user()
    assert (
        api.client.put("/api/funding/nope", json=campaign_body(), headers=api.auth(owner)).status_code == 404
    )
    body = campaign_body(fundingId="nope")
    assert api.client.put("/api/funding", json=body, headers=api.auth(owner)).status_code == 404
    assert api.client.delete("/api/fundings/nope", headers=api.auth(owner)).status_code == 404


def test_soft_delete_marks_the_campaign_and_keeps_it_readable(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    response = api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payload"], body["fundingId"]) == (200, "success", funding_id)
    assert body["funding"]["state"] == "DELETED"
    stored = stored_campaign(api, funding_id)
    assert stored["state"] == {"S": "DELETED"}
    assert stored["deletedAt"]["S"].endswith("Z")
    shown = api.client.get(f"/api/funding/{funding_id}").json()["payload"]
    assert shown["state"] == "DELETED" and shown["deletedAt"] == stored["deletedAt"]["S"]
    # Deleted counts as absent for further writes.
    assert api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner)).status_code == 404
    put = api.client.put(f"/api/funding/{funding_id}", json=campaign_body(), headers=api.auth(owner))
    assert put.status_code == 404


def set_state(api: Api, funding_id: str, state: CampaignState, funding_amount: int | None = None) -> None:
    """What the functions do: move the campaign on behind the API's back."""
    values: dict[str, Any] = {":s": {"S": str(state)}}
    update = "SET #state = :s"
    if funding_amount is not None:
        update += ", fundingAmount = :f"
        values[":f"] = {"N": str(funding_amount)}
    api.emulator.dynamodb.update_item(
        TableName=api.settings.fundings_table,
        Key={contract.FUNDINGS_TABLE.partition_key: {"S": funding_id}},
        UpdateExpression=update,
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=values,
    )


def test_closed_campaigns_cannot_be_changed_or_deleted(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    set_state(api, funding_id, CampaignState.SUCCEEDED)
    put = api.client.put(f"/api/funding/{funding_id}", json=campaign_body(), headers=api.auth(owner))
    assert put.status_code == 409
    assert put.json()["payload"]["error"] == "campaign_not_open"
    delete = api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner))
    assert delete.status_code == 409
    assert stored_campaign(api, funding_id)["state"] == {"S": "SUCCEEDED"}


def test_goal_cannot_drop_to_or_below_the_amount_raised(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    set_state(api, funding_id, CampaignState.OPEN, funding_amount=300_000)
    body = campaign_body(goalAmount=300_000)
    response = api.client.put(f"/api/funding/{funding_id}", json=body, headers=api.auth(owner))
    assert response.status_code == 409
    assert response.json()["payload"]["details"][0]["field"] == "goalAmount"
    body = campaign_body(goalAmount=300_001)
    assert api.client.put(f"/api/funding/{funding_id}", json=body, headers=api.auth(owner)).status_code == 201


def test_idempotent_create_returns_the_first_answer(api: Api) -> None:
    owner = api.user()
    headers = {**api.auth(owner), "Idempotency-Key": "create-1"}
    body = campaign_body(title="Once")
    first = api.client.post("/api/funding", json=body, headers=headers)
    second = api.client.post("/api/funding", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    listed = api.client.get("/api/fundings").json()["payload"]
    assert [c["title"] for c in listed] == ["Once"]


def test_listing_past_many_deleted_campaigns_still_reaches_every_live_one(api: Api) -> None:
    """Each page's scan budget is bounded; short (even empty) pages carry a cursor until the end."""
    owner = api.user()
    live = {create(api, owner), create(api, owner)}
    for _ in range(12):
        set_state(api, create(api, owner), CampaignState.DELETED)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(30):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = api.client.get("/api/fundings", params=params).json()
        assert len(body["payload"]) <= 1
        seen += [campaign["fundingId"] for campaign in body["payload"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert cursor is None
    assert sorted(seen) == sorted(live)
