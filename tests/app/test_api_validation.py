"""Every validation rule answers a 4xx envelope naming the field and the rule; no input yields a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.app.api_testkit import campaign_body, payment_body
from tests.app.conftest import Api


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    """Validation is stateless: the module shares one app and one caller."""
    return shared_api


def post_campaign(api: Api, body: Any, **kwargs: Any) -> Any:
    return api.client.post("/api/funding", json=body, headers=api.auth(api.any_user()), **kwargs)


def first_detail(response: Any) -> dict[str, str]:
    body = response.json()
    assert body["status"] == response.status_code
    assert body["payload"]["message"]
    return body["payload"]["details"][0]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("title", None, "string_type"),
        ("title", "", "string_too_short"),
        ("title", "   ", "string_blank"),
        ("title", "x" * 201, "string_too_long"),
        ("title", 123, "string_type"),
        ("description", "y" * 5001, "string_too_long"),
        ("description", ["a list"], "string_type"),
        ("goalAmount", 0, "greater_than"),
        ("goalAmount", -5, "greater_than"),
        ("goalAmount", 1.5, "int_type"),
        ("goalAmount", 1000.0, "int_type"),
        ("goalAmount", "1000", "int_type"),
        ("goalAmount", True, "int_type"),
        ("goalAmount", None, "int_type"),
        ("goalAmount", 10**15 + 1, "less_than_equal"),
        ("goalAmount", 10**30, "less_than_equal"),
        ("minAmount", 0, "greater_than"),
        ("minAmount", False, "int_type"),
        ("maxAmount", 999, "max_amount_below_min_amount"),
        ("maxAmount", "500000", "int_type"),
        ("startDate", "2030-01-01T00:00:00", "timezone_aware"),
        ("startDate", "2030-01-01", "timezone_aware"),
        ("startDate", "tomorrow", "datetime_from_date_parsing"),
        ("startDate", 1_900_000_000, "datetime_type"),
        ("startDate", "1999-12-31T23:59:59Z", "datetime_out_of_range"),
        ("startDate", "0001-01-01T00:00:00+01:00", "datetime_out_of_range"),
        ("endDate", "2000-01-02T00:00:00Z", "end_date_not_after_start_date"),
        ("endDate", "2100-06-01T00:00:00Z", "datetime_out_of_range"),
        ("endDate", "2030-01-01T00:00:00", "timezone_aware"),
        ("duration", 29, "duration_mismatch"),
        ("duration", 0, "greater_than_equal"),
        ("duration", 367, "less_than_equal"),
        ("duration", "30", "int_type"),
        ("duration", 30.0, "int_type"),
        ("status", "s" * 65, "string_too_long"),
        ("status", 1.5, "client_status_type"),
        ("status", True, "client_status_type"),
        ("status", 2**31, "less_than"),
        ("fundingAmount", -1, "greater_than_equal"),
        ("fundingAmount", "0", "int_type"),
        ("unexpected", 1, "extra_forbidden"),
        ("goal_amount", 1000, "extra_forbidden"),
    ],
)
def test_campaign_field_rules(api: Api, field: str, value: Any, rule: str) -> None:
    response = post_campaign(api, campaign_body(**{field: value}))
    assert response.status_code == 422, response.text
    detail = first_detail(response)
    assert response.json()["payload"]["error"] == "validation_error"
    assert (detail["location"], detail["field"], detail["rule"]) == ("body", field, rule)


def test_naive_datetimes_are_rejected_with_a_message_that_says_so(api: Api) -> None:
    response = post_campaign(api, campaign_body(startDate="2030-01-01T00:00:00"))
    assert "naive" in first_detail(response)["message"]


def test_end_date_in_the_past_is_rejected(api: Api) -> None:
    body = campaign_body(startDate="2020-01-01T00:00:00Z", endDate="2020-01-11T00:00:00Z", duration=10)
    detail = first_detail(post_campaign(api, body))
    assert (detail["field"], detail["rule"]) == ("endDate", "end_date_in_past")


def test_missing_fields_are_each_named(api: Api) -> None:
    response = post_campaign(api, {"title": "only a title"})
    assert response.status_code == 422
    missing = {d["field"] for d in response.json()["payload"]["details"] if d["rule"] == "missing"}
    assert missing == {
        "description",
        "goalAmount",
        "minAmount",
        "maxAmount",
        "startDate",
        "endDate",
        "duration",
    }


@pytest.mark.parametrize("body", [b"[]", b'"campaign"', b"null", b"42"])
def test_a_body_that_is_not_an_object_is_a_422(api: Api, body: bytes) -> None:
    response = send_raw(api, body)
    assert response.status_code == 422
    assert first_detail(response)["rule"] in {"model_attributes_type", "missing"}


@pytest.mark.parametrize(
    ("path", "value", "field", "rule"),
    [
        ("status", 2, "status", "envelope_status"),
        ("status", True, "status", "int_type"),
        ("status", "1", "status", "int_type"),
        ("status", 1.0, "status", "int_type"),
        ("payload.amount", 0, "payload.amount", "greater_than"),
        ("payload.amount", -100, "payload.amount", "greater_than"),
        ("payload.amount", 10.5, "payload.amount", "int_type"),
        ("payload.amount", "10000", "payload.amount", "int_type"),
        ("payload.amount", True, "payload.amount", "int_type"),
        ("payload.amount", 10**400, "payload.amount", "less_than_equal"),
        ("payload.paymentMethod", "", "payload.paymentMethod", "string_too_short"),
        ("payload.paymentMethod", "C" * 65, "payload.paymentMethod", "string_too_long"),
        ("payload.paymentMethod", 7, "payload.paymentMethod", "string_type"),
        ("payload.paymentMethod", "card\x00", "payload.paymentMethod", "string_not_printable"),
        ("payload.paymentMethod", "credit\ncard", "payload.paymentMethod", "string_not_printable"),
        ("payload.paymentMethod", "\u200b\u200b", "payload.paymentMethod", "string_not_printable"),
        ("payload.paymentMethod", "\u3164", "payload.paymentMethod", "string_blank"),
        ("payload.paymentMethod", "   ", "payload.paymentMethod", "string_blank"),
        ("payload.fundingId", "", "payload.fundingId", "string_pattern_mismatch"),
        ("payload.fundingId", "a/b", "payload.fundingId", "string_pattern_mismatch"),
        ("payload.userId", "someone-else", "payload.userId", "extra_forbidden"),
        ("extra", {}, "extra", "extra_forbidden"),
    ],
)
def test_payment_field_rules(api: Api, path: str, value: Any, field: str, rule: str) -> None:
    body = payment_body("f-1")
    target = body
    *parents, leaf = path.split(".")
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    response = api.client.post("/api/payments", json=body, headers=api.auth(api.any_user()))
    assert response.status_code == 422, response.text
    detail = first_detail(response)
    assert (detail["field"], detail["rule"]) == (field, rule)


@pytest.mark.parametrize(
    "method", ["credit card", "CARD", "카드", "Visa •••• 4242", "bank-transfer (KB)", "x", "C" * 64]
)
def test_payment_methods_are_free_text_as_the_seeds_client_sends_them(api: Api, method: str) -> None:
    """Issue 13 item 12: the seed's example body (`"paymentMethod": "credit card"`) was a 422. The
    campaign does not exist, so an accepted body is answered 404, never 422."""
    response = api.client.post(
        "/api/payments",
        json=payment_body("no-such-campaign", method=method),
        headers=api.auth(api.any_user()),
    )
    assert response.status_code == 404, response.text
    assert response.json()["payload"]["details"][0]["field"] == "payload.fundingId"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("title", "\u200b\u200c\u200d", "string_blank"),
        ("title", "\u3164\u3164", "string_blank"),
        ("title", "\x00\x01\x7f", "string_blank"),
        ("title", "\u2800 \u00a0", "string_blank"),
        ("title", "\u0301\u034f", "string_blank"),
        ("title", "Lamps\x1b[2J", "string_control_characters"),
        ("title", "Two\nlines", "string_control_characters"),
        ("description", "\ufeff\u2060\t\n", "string_blank"),
        ("description", "Forty lamps\x07", "string_control_characters"),
    ],
)
def test_titles_and_descriptions_need_visible_text_and_no_controls(
    api: Api, field: str, value: str, rule: str
) -> None:
    """Issue 13 item 14: a title of only invisible or control characters was accepted."""
    response = post_campaign(api, campaign_body(**{field: value}))
    assert response.status_code == 422, response.text
    detail = first_detail(response)
    assert (detail["field"], detail["rule"]) == (field, rule)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "태양광 램프 👩‍👩‍👧 for the school"),  # joiners inside an emoji sequence are fine
        ("title", "Café ñ — «quoted»"),
        ("description", "Line one\nLine two\r\n\tindented"),
    ],
)
def test_ordinary_text_with_joiners_accents_and_line_breaks_is_accepted(
    api: Api, field: str, value: str
) -> None:
    response = post_campaign(api, campaign_body(**{field: value}))
    assert response.status_code == 201, response.text


def test_payment_without_payload_or_status(api: Api) -> None:
    response = api.client.post("/api/payments", json={"fundingId": "x"}, headers=api.auth(api.any_user()))
    assert response.status_code == 422
    fields = {(d["field"], d["rule"]) for d in response.json()["payload"]["details"]}
    assert {("status", "missing"), ("payload", "missing"), ("fundingId", "extra_forbidden")} <= fields


def send_raw(api: Api, content: bytes, content_type: str | None = "application/json") -> Any:
    headers = {**api.auth(api.any_user()), **({"Content-Type": content_type} if content_type else {})}
    return api.client.post("/api/funding", content=content, headers=headers)


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"title": }', b"\xff\xfe", b'{"title": "a"} trailing', b"[" * 20_000 + b"]" * 20_000],
)
def test_malformed_json_is_a_400(api: Api, content: bytes) -> None:
    response = send_raw(api, content)
    assert response.status_code == 400, response.text
    assert response.json()["payload"]["error"] in {"malformed_json", "bad_request"}


def test_integers_too_long_to_parse_are_a_400_not_a_500(api: Api) -> None:
    body = json.dumps(campaign_body()).replace('"goalAmount": 1000000', '"goalAmount": ' + "9" * 5000)
    assert send_raw(api, body.encode()).status_code == 400


def test_nan_and_infinity_are_not_amounts(api: Api) -> None:
    for literal in ("NaN", "Infinity", "1e400"):
        body = json.dumps(campaign_body()).replace('"goalAmount": 1000000', f'"goalAmount": {literal}')
        response = send_raw(api, body.encode())
        assert response.status_code == 422, literal
        assert first_detail(response)["rule"] == "int_type"


def test_lone_surrogates_are_refused_not_stored(api: Api) -> None:
    body = json.dumps(campaign_body()).replace('"Solar lamps', '"\\ud800 Solar lamps')
    response = send_raw(api, body.encode())
    assert response.status_code == 422
    assert first_detail(response)["rule"] == "string_unicode"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_must_be_json(api: Api, content_type: str | None) -> None:
    response = send_raw(api, json.dumps(campaign_body()).encode(), content_type)
    assert response.status_code == 415
    assert response.json()["payload"]["error"] == "unsupported_media_type"


def test_json_with_charset_is_fine(api: Api) -> None:
    response = send_raw(api, json.dumps(campaign_body()).encode(), "application/json; charset=utf-8")
    assert response.status_code == 201


def test_oversized_bodies_are_a_413(api: Api) -> None:
    response = send_raw(api, json.dumps(campaign_body(description="z" * 70_000)).encode())
    assert response.status_code == 413
    assert response.json()["payload"]["error"] == "payload_too_large"


def test_oversized_streamed_bodies_are_a_413(api: Api) -> None:
    def chunks() -> Any:
        yield b'{"title": "'
        for _ in range(100):
            yield b"z" * 1000
        yield b'"}'

    headers = {**api.auth(api.any_user()), "Content-Type": "application/json"}
    response = api.client.post("/api/funding", content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["payload"]["error"] == "payload_too_large"


def test_empty_body_is_a_422(api: Api) -> None:
    response = send_raw(api, b"")
    assert response.status_code == 422
    assert first_detail(response)["rule"] == "missing"


def test_idempotency_key_format_is_checked(api: Api) -> None:
    headers = {**api.auth(api.any_user()), "Idempotency-Key": "x" * 256}
    response = api.client.post("/api/funding", json=campaign_body(), headers=headers)
    assert response.status_code == 422
    detail = first_detail(response)
    assert (detail["location"], detail["field"]) == ("header", "Idempotency-Key")


def test_unknown_routes_and_methods_answer_with_the_envelope(api: Api) -> None:
    response = api.client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "payload": {"error": "not_found", "message": "Not Found", "details": []},
    }
    response = api.client.patch("/api/funding")
    assert response.status_code == 405
    assert response.json()["payload"]["error"] == "method_not_allowed"
