"""The whole chain end to end: a backer's payment is authorized, captured, counted and recorded."""

from __future__ import annotations

from tests.lambdas.conftest import Platform


def test_payment_is_authorized_captured_counted_and_recorded(platform: Platform) -> None:
    funding_id = platform.create_campaign(goal=100_000)
    payment = platform.create_payment(funding_id, 30_000)

    platform.run()

    stored = platform.payment(payment["paymentId"])
    assert stored["state"] == "CAPTURED"
    assert stored["capturedAt"].endswith("Z")
    assert platform.campaign(funding_id)["fundingAmount"] == 30_000
    assert platform.campaign(funding_id)["state"] == "OPEN"
    types = [e["type"] for e in platform.published(paymentId=payment["paymentId"])]
    assert types == ["payment.requested", "payment.approved", "payment.captured"]
    ledger_types = sorted(item["type"] for item in platform.ledger(funding_id))
    assert ledger_types == ["payment.approved", "payment.captured", "payment.requested"]
    assert platform.gateway.count("authorize") == 1
