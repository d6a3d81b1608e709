"""Per-user quotas (issue 13 item 13): one token created 300 payments in 5 s and 100 campaigns in 0.7 s.
Limits are settings (stack config); these tests turn them on and see the 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from app.main import create_app
from app.quotas import counter_id
from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api, Emulator, running_api
from tests.app.test_api_campaigns import create
from tests.app.test_api_money_terms import recorded
from tests.app.test_api_payments import payments_in_table

NOON = datetime(2031, 5, 4, 12, 0, 15, tzinfo=UTC).timestamp()
"""A fixed clock for the quota counters (15 s into a minute, 12 h before midnight UTC)."""


class Clock:
    """A settable clock for the quota counters."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


def limited_api(emulator: Emulator, clock: Clock, **limits: int) -> Iterator[Api]:
    settings = {
        "quota_payments_per_minute": 0,
        "quota_payments_per_campaign_per_day": 0,
        "quota_campaigns_per_day": 0,
        **{f"quota_{name}": value for name, value in limits.items()},
    }
    with running_api(emulator, **settings) as api:
        api.app.state.services.quotas._clock = clock
        yield api


@pytest.fixture
def per_minute(emulator: Emulator, clock: Clock) -> Iterator[Api]:
    yield from limited_api(emulator, clock, payments_per_minute=3)


def pay(api: Api, funding_id: str, backer: dict[str, str], client: TestClient | None = None) -> Any:
    return (client or api.client).post(
        "/api/payments", json=payment_body(funding_id), headers=api.auth(backer)
    )


def counter(api: Api, user: dict[str, str], clock: Clock) -> dict[str, Any]:
    key = counter_id(user["sub"], datetime.fromtimestamp(clock.now, UTC))
    item: dict[str, Any] = api.emulator.dynamodb.get_item(
        TableName=api.settings.idempotency_table, Key={"id": {"S": key}}
    ).get("Item", {})
    return item


def test_payments_per_minute_are_limited_per_user_with_retry_after(per_minute: Api, clock: Clock) -> None:
    api = per_minute
    funding_id = create(api, api.user())
    backer = api.user()
    for _ in range(3):
        assert pay(api, funding_id, backer).status_code == 201
    refused = pay(api, funding_id, backer)
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["status"] == 429 and body["payload"]["error"] == "quota_exceeded"
    assert "at most 3 payments per minute" in body["payload"]["message"]
    assert body["payload"]["details"][0]["rule"] == "payments_per_minute"
    assert refused.headers["Retry-After"] == "45"  # 15 s into the minute
    assert len(payments_in_table(api)) == 3 and len(api.published()) == 3

    assert pay(api, funding_id, api.user()).status_code == 201  # another user has their own quota
    clock.now += 45
    assert pay(api, funding_id, backer).status_code == 201  # the next minute
    item = counter(api, backer, clock)
    assert item["m#1200"] == {"N": "3"} and item["m#1201"] == {"N": "1"}
    day_after = datetime(2031, 5, 6, tzinfo=UTC).timestamp()
    assert int(item["expiration"]["N"]) == day_after  # expires a day after its day ends


def test_payments_per_campaign_per_day(emulator: Emulator, clock: Clock) -> None:
    for api in limited_api(emulator, clock, payments_per_campaign_per_day=2, payments_per_minute=100):
        first, second = create(api, api.user()), create(api, api.user())
        backer = api.user()
        assert [pay(api, first, backer).status_code for _ in range(2)] == [201, 201]
        refused = pay(api, first, backer)
        assert refused.status_code == 429
        assert refused.json()["payload"]["details"][0]["rule"] == "payments_per_campaign_per_day"
        assert refused.headers["Retry-After"] == str(12 * 3600 - 15)  # to midnight UTC
        assert pay(api, second, backer).status_code == 201
        item = counter(api, backer, clock)
        assert item[f"p#{first}"] == {"N": "2"} and item["m#1200"] == {"N": "3"}  # refusals count nothing
        clock.now += 12 * 3600
        assert pay(api, first, backer).status_code == 201  # a new day, a new counter


def test_campaigns_per_day(emulator: Emulator, clock: Clock) -> None:
    for api in limited_api(emulator, clock, campaigns_per_day=2):
        owner = api.user()
        for _ in range(2):
            create(api, owner)
        refused = api.client.post("/api/funding", json=campaign_body(), headers=api.auth(owner))
        assert refused.status_code == 429, refused.text
        assert "at most 2 new campaigns per day" in refused.json()["payload"]["message"]
        assert int(refused.headers["Retry-After"]) == 12 * 3600 - 15
        assert len(api.client.get("/api/fundings").json()["payload"]) == 2
        create(api, api.user())
        clock.now += 24 * 3600
        create(api, owner)


def test_counting_holds_across_api_tasks(per_minute: Api, clock: Clock) -> None:
    """Two tasks behind the load balancer share one counter: the limit holds for their sum."""
    api = per_minute
    other_task = create_app(api.settings, signing_keys=api.jwks, configure_logs=False)
    other_task.state.services.quotas._clock = clock
    funding_id = create(api, api.user())
    backer = api.user()
    with TestClient(other_task, raise_server_exceptions=False) as second:
        answers = [pay(api, funding_id, backer, client).status_code for client in (api.client, second) * 2]
    assert answers == [201, 201, 201, 429]


def test_one_conditional_update_per_counted_request_and_none_when_unlimited(per_minute: Api) -> None:
    api = per_minute
    funding_id = create(api, api.user())
    backer = api.user()
    pay(api, funding_id, backer)  # freezes the campaign's terms
    with recorded(api) as calls:
        assert pay(api, funding_id, backer).status_code == 201
    assert [op for op, table in calls.calls if table == api.settings.idempotency_table] == ["UpdateItem"]
    with recorded(api) as calls:
        create(api, api.user())  # campaigns are unlimited here: no counter call at all
    assert [op for op, _ in calls.calls] == ["PutItem"]


def test_refused_requests_and_replays_are_not_counted(per_minute: Api, clock: Clock) -> None:
    api = per_minute
    funding_id = create(api, api.user())
    backer = api.user()
    assert (
        api.client.post(
            "/api/payments", json=payment_body("no-such-campaign"), headers=api.auth(backer)
        ).status_code
        == 404
    )
    assert (
        api.client.post(
            "/api/payments", json=payment_body(funding_id, amount=1), headers=api.auth(backer)
        ).status_code
        == 422
    )
    assert counter(api, backer, clock) == {}
    headers = {**api.auth(backer), "Idempotency-Key": "once"}
    for _ in range(5):
        assert (
            api.client.post("/api/payments", json=payment_body(funding_id), headers=headers).status_code
            == 201
        )
    assert counter(api, backer, clock)["m#1200"] == {"N": "1"}


def test_a_refused_payment_does_not_burn_its_idempotency_key(per_minute: Api, clock: Clock) -> None:
    api = per_minute
    funding_id = create(api, api.user())
    backer = api.user()
    for _ in range(3):
        pay(api, funding_id, backer)
    headers = {**api.auth(backer), "Idempotency-Key": "after-the-wait"}
    assert api.client.post("/api/payments", json=payment_body(funding_id), headers=headers).status_code == 429
    clock.now += 60
    assert api.client.post("/api/payments", json=payment_body(funding_id), headers=headers).status_code == 201


def test_a_counter_item_at_dynamodbs_size_limit_is_a_429_not_a_500(
    per_minute: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who backed thousands of campaigns in a day fills their counter item (400 KB): DynamoDB
    refuses the update with a ValidationException (moto does not model it, so it is raised here)."""
    api = per_minute
    funding_id = create(api, api.user())

    def item_too_large(**_: Any) -> None:
        error = {
            "Code": "ValidationException",
            "Message": "Item size to update has exceeded the maximum allowed size",
        }
        raise ClientError({"Error": error}, "UpdateItem")

    monkeypatch.setattr(api.app.state.services.store._db, "update_item", item_too_large)
    response = pay(api, funding_id, api.user())
    assert response.status_code == 429
    assert response.json()["payload"]["details"][0]["rule"] == "requests_per_day"
    assert int(response.headers["Retry-After"]) == 12 * 3600 - 15
    assert payments_in_table(api) == []
