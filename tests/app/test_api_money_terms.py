"""What a campaign's owner may still change (issue 13 items 1 and 8, DESIGN §2): nothing after the
endDate, and not the money terms once a payment was accepted; races between the owner's PUT and a
payment end safe in both orders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.models import to_iso_utc
from app.store import MONEY_TERMS, ConditionFailed, Store
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api
from tests.app.test_api_campaigns import create, stored_campaign
from tests.app.test_api_payments import payments_in_table


def set_dates(api: Api, funding_id: str, start: str, end: str) -> None:
    """Move a campaign's dates behind the API's back (time passing)."""
    api.emulator.dynamodb.update_item(
        TableName=api.settings.fundings_table,
        Key={"fundingId": {"S": funding_id}},
        UpdateExpression="SET startDate = :s, endDate = :e",
        ExpressionAttributeValues={":s": {"S": start}, ":e": {"S": end}},
    )


def ended_a_minute_ago(api: Api, funding_id: str) -> str:
    now = datetime.now(UTC)
    end = to_iso_utc(now - timedelta(minutes=1))
    set_dates(api, funding_id, to_iso_utc(now - timedelta(days=3)), end)
    return end


def pay(api: Api, funding_id: str, backer: dict[str, str], amount: int = 10_000) -> Any:
    return api.client.post("/api/payments", json=payment_body(funding_id, amount), headers=api.auth(backer))


def put(api: Api, owner: dict[str, str], funding_id: str, **overrides: Any) -> Any:
    body = {**current_body(api, funding_id), **overrides}
    return api.client.put(f"/api/funding/{funding_id}", json=body, headers=api.auth(owner))


def current_body(api: Api, funding_id: str) -> dict[str, Any]:
    """A PUT body that leaves the campaign as it is."""
    shown = api.client.get(f"/api/funding/{funding_id}").json()["payload"]
    start = datetime.fromisoformat(shown["startDate"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(shown["endDate"].replace("Z", "+00:00"))
    return campaign_body(
        title=shown["title"],
        description=shown["description"],
        goalAmount=shown["goalAmount"],
        minAmount=shown["minAmount"],
        maxAmount=shown["maxAmount"],
        startDate=shown["startDate"],
        endDate=shown["endDate"],
        duration=-(-(end - start) // timedelta(days=1)),
    )


# --- nothing changes after the endDate (item 1 and DESIGN §2) -------------------------------------


def test_delete_after_the_end_date_is_refused_and_changes_nothing(api: Api) -> None:
    """An owner could dodge the refunds of a missed deadline by deleting before the closer ran."""
    owner = api.user()
    funding_id = create(api, owner)
    end = ended_a_minute_ago(api, funding_id)
    response = api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner))
    assert response.status_code == 409, response.text
    payload = response.json()["payload"]
    assert payload["error"] == "campaign_ended"
    assert end in payload["message"] and "nothing about a campaign changes" in payload["message"]
    stored = stored_campaign(api, funding_id)
    assert stored["state"] == {"S": "OPEN"} and "deletedAt" not in stored


def test_put_after_the_end_date_is_refused_even_to_extend_it(api: Api) -> None:
    """Issue item 8: "A passed deadline can also be extended before the closer runs"."""
    owner = api.user()
    funding_id = create(api, owner)
    end = ended_a_minute_ago(api, funding_id)
    response = api.client.put(
        f"/api/funding/{funding_id}", json=campaign_body(days=60), headers=api.auth(owner)
    )
    assert response.status_code == 409, response.text
    assert response.json()["payload"]["error"] == "campaign_ended"
    assert stored_campaign(api, funding_id)["endDate"] == {"S": end}


def test_a_date_only_end_date_counts_until_the_end_of_that_day(api: Api) -> None:
    """The functions' deadline rule (lambdas/shared/campaigns.py `deadline`) holds for the API too."""
    owner = api.user()
    today, yesterday = datetime.now(UTC).date(), datetime.now(UTC).date() - timedelta(days=1)
    open_today = create(api, owner)
    set_dates(api, open_today, "2020-01-01", today.isoformat())
    ended = create(api, owner)
    set_dates(api, ended, "2020-01-01", yesterday.isoformat())
    assert api.client.delete(f"/api/fundings/{ended}", headers=api.auth(owner)).status_code == 409
    assert pay(api, ended, api.user()).json()["payload"]["error"] == "campaign_ended"
    assert pay(api, open_today, api.user()).status_code == 201
    assert api.client.delete(f"/api/fundings/{open_today}", headers=api.auth(owner)).status_code == 200


def test_a_deleted_campaign_keeps_its_payments_for_the_closer_to_refund(api: Api) -> None:
    owner, backer = api.user(), api.user()
    funding_id = create(api, owner)
    assert pay(api, funding_id, backer).status_code == 201
    response = api.client.delete(f"/api/fundings/{funding_id}", headers=api.auth(owner))
    assert response.status_code == 200
    stored = stored_campaign(api, funding_id)
    assert stored["state"] == {"S": "DELETED"} and stored["deletedAt"]["S"].endswith("Z")
    assert len(payments_in_table(api)) == 1  # nothing deleted: the closer settles them


# --- money terms frozen by the first payment (item 8) --------------------------------------------


def test_the_first_payment_freezes_the_money_terms(api: Api) -> None:
    """Issue item 8: with money raised, PUT goalAmount 2001, minAmount 1 and an earlier endDate
    was accepted; the owner then paid 1 and the campaign succeeded with a fraction of its goal."""
    owner = api.user()
    funding_id = create(api, owner)
    assert "termsFrozenAt" not in stored_campaign(api, funding_id)
    assert pay(api, funding_id, api.user(), 2_000).status_code == 201
    frozen_at = stored_campaign(api, funding_id)["termsFrozenAt"]["S"]
    shown = api.client.get(f"/api/funding/{funding_id}").json()["payload"]
    assert shown["termsFrozenAt"] == frozen_at

    earlier_end = to_iso_utc(datetime.now(UTC) + timedelta(days=2))
    response = put(api, owner, funding_id, goalAmount=2_001, minAmount=1, endDate=earlier_end, duration=3)
    assert response.status_code == 409, response.text
    payload = response.json()["payload"]
    assert payload["error"] == "terms_frozen"
    assert "goalAmount, minAmount, endDate cannot change" in payload["message"]
    assert "accepted payments" in payload["message"] and "title and description" in payload["message"]
    assert {d["field"] for d in payload["details"]} == {"goalAmount", "minAmount", "endDate"}
    stored = stored_campaign(api, funding_id)
    assert (stored["goalAmount"], stored["minAmount"]) == ({"N": "1000000"}, {"N": "1000"})


@pytest.mark.parametrize("term", MONEY_TERMS)
def test_each_money_term_is_frozen(api: Api, term: str) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    assert pay(api, funding_id, api.user()).status_code == 201
    body = current_body(api, funding_id)
    if term in ("startDate", "endDate"):
        nudge = timedelta(minutes=30 if term == "startDate" else -30)  # same duration in days
        shifted = datetime.fromisoformat(body[term].replace("Z", "+00:00")) + nudge
        changes = {term: to_iso_utc(shifted)}
    else:
        changes = {term: body[term] + 1}
    response = put(api, owner, funding_id, **changes)
    assert response.status_code == 409, (term, response.text)
    assert [d["field"] for d in response.json()["payload"]["details"]] == [term]


def test_title_and_description_stay_editable_after_payments(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    assert pay(api, funding_id, api.user()).status_code == 201
    response = put(api, owner, funding_id, title="Sixty lamps now", description="Thanks, everyone!")
    assert response.status_code == 201, response.text
    assert response.json()["funding"]["title"] == "Sixty lamps now"
    assert (
        response.json()["funding"]["termsFrozenAt"] == stored_campaign(api, funding_id)["termsFrozenAt"]["S"]
    )


def test_before_any_payment_the_terms_may_change(api: Api) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    assert put(api, owner, funding_id, goalAmount=5_000, minAmount=10).status_code == 201
    assert "termsFrozenAt" not in stored_campaign(api, funding_id)


class RecordingCalls:
    """Counts the DynamoDB operations the app makes, per table."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params.get("TableName", "")))


@contextmanager
def recorded(api: Api) -> Iterator[RecordingCalls]:
    recorder = RecordingCalls()
    events = api.app.state.services.store._db.meta.events
    events.register("before-parameter-build.dynamodb", recorder)
    try:
        yield recorder
    finally:
        events.unregister("before-parameter-build.dynamodb", recorder)


def test_payments_to_a_frozen_campaign_cost_no_extra_write(api: Api) -> None:
    """A hot campaign's payments do not all write its item: only the first one freezes the terms."""
    funding_id = create(api, api.user())
    with recorded(api) as first:
        assert pay(api, funding_id, api.user()).status_code == 201
    fundings = api.settings.fundings_table
    assert [op for op, table in first.calls if table == fundings] == ["GetItem", "UpdateItem"]
    with recorded(api) as later:
        for _ in range(3):
            assert pay(api, funding_id, api.user()).status_code == 201
    assert [op for op, table in later.calls if table == fundings] == ["GetItem"] * 3
    assert [op for op, _ in later.calls] == ["GetItem", "PutItem"] * 3  # quotas off: no counter


# --- races between the owner's PUT and a payment, both orders ------------------------------------


def test_race_put_lands_between_the_payments_read_and_its_freeze(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment was validated against terms the owner changed a moment later: its freeze fails
    (terms differ), it is validated again against the new terms and refused (minAmount rose)."""
    owner = api.user()
    funding_id = create(api, owner)
    store: Store = api.app.state.services.store
    real_freeze = store.freeze_campaign_terms
    raised_min = {**current_body(api, funding_id), "minAmount": 50_000}

    def owner_puts_first(*args: Any, **kwargs: Any) -> Any:
        now = to_iso_utc(datetime.now(UTC))
        changes = {k: v for k, v in raised_min.items() if k in MONEY_TERMS or k == "title"}
        store.update_open_campaign(funding_id, owner["sub"], changes, now)
        return real_freeze(*args, **kwargs)

    monkeypatch.setattr(store, "freeze_campaign_terms", owner_puts_first)
    response = pay(api, funding_id, api.user(), 10_000)
    assert response.status_code == 422, response.text
    assert response.json()["payload"]["details"][0]["rule"] == "amount_at_least_min_amount"
    assert payments_in_table(api) == []
    stored = stored_campaign(api, funding_id)
    assert stored["minAmount"] == {"N": "50000"} and "termsFrozenAt" not in stored


def test_race_put_lands_first_and_the_payment_still_fits_the_new_terms(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    store: Store = api.app.state.services.store
    real_freeze = store.freeze_campaign_terms
    calls: list[dict[str, Any]] = []

    def owner_puts_first(funding: str, terms: dict[str, Any], now_iso: str) -> Any:
        calls.append(terms)
        if len(calls) == 1:
            changes = {k: v for k, v in current_body(api, funding_id).items() if k in MONEY_TERMS}
            store.update_open_campaign(
                funding_id, owner["sub"], {**changes, "goalAmount": 3_000_000}, now_iso
            )
        return real_freeze(funding, terms, now_iso)

    monkeypatch.setattr(store, "freeze_campaign_terms", owner_puts_first)
    assert pay(api, funding_id, api.user(), 10_000).status_code == 201
    assert [terms["goalAmount"] for terms in calls] == [1_000_000, 3_000_000]  # frozen as now stored
    stored = stored_campaign(api, funding_id)
    assert stored["goalAmount"] == {"N": "3000000"} and "termsFrozenAt" in stored


def test_race_payment_freezes_first_then_the_owners_put_is_refused(api: Api) -> None:
    """The owner's PUT was built from a read before the payment; its conditional write sees the freeze."""
    owner = api.user()
    funding_id = create(api, owner)
    stale = current_body(api, funding_id)  # what the owner read, before anyone paid
    assert pay(api, funding_id, api.user()).status_code == 201
    store: Store = api.app.state.services.store
    changes = {**{k: v for k, v in stale.items() if k in MONEY_TERMS}, "goalAmount": 2_001}
    with pytest.raises(ConditionFailed) as refused:
        store.update_open_campaign(funding_id, owner["sub"], changes, to_iso_utc(datetime.now(UTC)))
    assert refused.value.item is not None and "termsFrozenAt" in refused.value.item
    response = api.client.put(
        f"/api/funding/{funding_id}", json={**stale, "goalAmount": 2_001}, headers=api.auth(owner)
    )
    assert response.status_code == 409
    assert response.json()["payload"]["error"] == "terms_frozen"


def test_a_campaign_closed_between_the_read_and_the_freeze_takes_no_payment(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = api.user()
    funding_id = create(api, owner)
    store: Store = api.app.state.services.store
    real_freeze = store.freeze_campaign_terms

    def owner_deletes_first(*args: Any, **kwargs: Any) -> Any:
        store.soft_delete_campaign(funding_id, owner["sub"], to_iso_utc(datetime.now(UTC)))
        return real_freeze(*args, **kwargs)

    monkeypatch.setattr(store, "freeze_campaign_terms", owner_deletes_first)
    assert pay(api, funding_id, api.user()).status_code == 404
    assert payments_in_table(api) == []
