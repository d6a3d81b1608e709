"""Hot campaign: N payments to one campaign through funding_update at its deployed batch size.

Run: .venv/bin/python bench/bench_hot_campaign.py [N]   (N defaults to 495: five batches; moto
copies whole tables inside each transaction, so its wall time grows with N², not the figures)
The batch size is funding_update's event source mapping setting (its spec,
lambdas/specs/funding_update.py: 99, so one capture transaction holds 1 campaign + 99 payments, DynamoDB's
100-item limit). Counts the DynamoDB writes that touch the campaign item (TransactWriteItems
members and single-item writes on the fundings table, cancelled attempts included) and their
write capacity: a transactional write costs 2 WCU per started KB of the item, a plain one 1 WCU
(cancelled transactions are counted at full price, to be safe). The ceiling for one campaign
follows from DynamoDB's 1,000 WCU/s per partition.

Each run captures N steady-state payments (N rounded up to whole batches; the goal is out of
reach, as for a hot campaign mid-flight), then one more batch whose last payment reaches the
goal exactly (the close: its crossing transaction, any cancelled attempt and the
goalPublishedAt marker are one-offs per campaign, shown apart). Two runs: batches one after
another, and pairs of batches racing (every second batch commits between the other's read and
write; the threshold condition lets such batches commute, so they do not cancel each other).
Targets: steady state ≤ 2 WCU / 99 = 0.0202 campaign-item WCU per captured payment (a ceiling
≥ 49,500 payments/s for one campaign), and ≤ 0.15 campaign-item writes per captured payment over
the whole run (the earlier target). In-process moto; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION, ACCOUNT = "us-east-1", "123456789012"
ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "FUNDINGS_TABLE": "fundings",
    "PAYMENTS_TABLE": "payments",
    "PAYMENTS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:payments",
    "FUNDING_TARGET_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:funding-target",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
os.environ.update(ENV)

from moto import mock_aws  # noqa: E402

from lambdas import funding_update  # noqa: E402
from lambdas.shared import aws, contract  # noqa: E402

BATCH_SIZE = funding_update.SPEC.sizing.batch_size
PARTITION_WCU_PER_SECOND = 1_000
TARGET_WRITES_PER_PAYMENT = 0.15
TARGET_WCU_PER_PAYMENT = 2 / 99
"""One transactional write (2 WCU for an item up to 1 KB) per 99 captured payments."""


class CampaignWriteCounter:
    """Wraps the DynamoDB client and counts writes (and their WCU) on the fundings table."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.writes = 0
        self.transactional = 0
        self.plain = 0
        self.cancelled = 0
        self._transact = client.transact_write_items
        self._update = client.update_item
        client.transact_write_items = self.transact_write_items
        client.update_item = self.update_item

    def transact_write_items(self, **kwargs: Any) -> Any:
        touching = sum(1 for item in kwargs["TransactItems"] if _table(item) == "fundings")
        self.writes += touching
        self.transactional += touching
        try:
            return self._transact(**kwargs)
        except Exception:
            self.cancelled += 1 if touching else 0
            raise

    def update_item(self, **kwargs: Any) -> Any:
        if kwargs["TableName"] == "fundings":
            self.writes += 1
            self.plain += 1
        return self._update(**kwargs)

    def snapshot(self) -> dict[str, int]:
        return {
            "writes": self.writes,
            "transactional": self.transactional,
            "plain": self.plain,
            "cancelled": self.cancelled,
        }


def _table(item: dict[str, Any]) -> str:
    return next(iter(item.values()))["TableName"]


def _setup(n: int, goal: int) -> tuple[str, list[dict[str, Any]]]:
    ddb, sns = aws.client("dynamodb"), aws.client("sns")
    for spec in (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE):
        ddb.create_table(
            TableName=os.environ[spec.env_var],
            KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": spec.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    for topic in contract.Topic:
        sns.create_topic(Name=str(topic))
    funding_id = str(uuid.uuid4())
    now = contract.utc_now_iso()
    campaign = {
        "fundingId": funding_id,
        "ownerId": "owner",
        "title": "Hot campaign",
        "description": "x" * 400,
        "goalAmount": goal,
        "fundingAmount": 0,
        "state": "OPEN",
        "startDate": now,
        "endDate": "2999-01-01",
        "createdAt": now,
        "updatedAt": now,
    }
    ddb.put_item(TableName="fundings", Item=aws.to_attributes(campaign))
    records = []
    for i in range(n):
        payment_id = f"p{i:06d}"
        item = {
            "paymentId": payment_id,
            "fundingId": funding_id,
            "userId": "u",
            "amount": 1_000,
            "state": "APPROVED",
            "createdAt": f"{now}#{i:06d}",
            "approvedAt": now,
        }
        ddb.put_item(TableName="payments", Item=aws.to_attributes(item))
        event = contract.make_event(
            "payment.approved", payment_id=payment_id, funding_id=funding_id, user_id="u", amount=1_000
        )
        records.append(
            {
                "messageId": f"m{i}",
                "receiptHandle": "r",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        )
    return funding_id, records


def _wcu(counts: dict[str, int], item_kb: float) -> float:
    """Write capacity of the counted writes: 2 WCU per KB transactional, 1 WCU per KB plain."""
    units = max(1, math.ceil(item_kb))
    return 2 * units * counts["transactional"] + units * counts["plain"]


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def run(n: int, racing: bool) -> dict[str, Any]:
    """N steady-state payments then one closing batch; counts per phase."""
    steady_batches = math.ceil(n / BATCH_SIZE)
    steady = steady_batches * BATCH_SIZE
    total = steady + BATCH_SIZE
    with mock_aws():
        aws.reset()
        funding_id, records = _setup(total, goal=total * 1_000)  # the last payment reaches it exactly
        counter = CampaignWriteCounter(aws.client("dynamodb"))
        batches = [records[i : i + BATCH_SIZE] for i in range(0, total, BATCH_SIZE)]
        real = funding_update._capture_transaction
        pending: list[list[dict[str, Any]]] = []

        def interleaved(*args: Any, **kwargs: Any) -> None:
            if pending:  # the other batch commits between this one's read and write
                other = pending.pop()
                assert not funding_update.handler({"Records": other}, None)["batchItemFailures"]
            real(*args, **kwargs)

        def deliver(group: list[list[dict[str, Any]]]) -> None:
            for index in range(0, len(group), 2 if racing else 1):
                if racing and index + 1 < len(group):
                    pending.append(group[index + 1])
                result = funding_update.handler({"Records": group[index]}, None)
                assert not result["batchItemFailures"], result

        funding_update._capture_transaction = interleaved
        started = time.perf_counter()
        try:
            deliver(batches[:steady_batches])
            at_steady = counter.snapshot()
            deliver(batches[steady_batches:])
        finally:
            funding_update._capture_transaction = real
        elapsed = time.perf_counter() - started
        campaign = aws.get_item("fundings", {"fundingId": funding_id}) or {}
        item_kb = len(json.dumps(campaign)) / 1024
        captured = sum(
            1
            for p in aws.batch_get("payments", "paymentId", [f"p{i:06d}" for i in range(total)]).values()
            if p["state"] == "CAPTURED"
        )
        assert campaign["fundingAmount"] == captured * 1_000, "fundingAmount must equal the captured sum"
        assert campaign["state"] == "SUCCEEDED" and captured == total
        whole = counter.snapshot()
        return {
            "captured": captured,
            "steady_captured": steady,
            "steady": at_steady,
            "close": _delta(whole, at_steady),
            "writes": whole["writes"],
            "cancelled": whole["cancelled"],
            "steady_wcu": _wcu(at_steady, item_kb),
            "close_wcu": _wcu(_delta(whole, at_steady), item_kb),
            "item_kb": item_kb,
            "elapsed": elapsed,
        }


def report(label: str, r: dict[str, Any]) -> bool:
    per_payment = r["writes"] / r["captured"]
    ceiling_requests = PARTITION_WCU_PER_SECOND / per_payment
    # A transactional write costs 2 WCU per started KB of the item.
    wcu_per_write = 2 * max(1, math.ceil(r["item_kb"]))
    ceiling_wcu = PARTITION_WCU_PER_SECOND / (per_payment * wcu_per_write)
    steady_wcu_per_payment = r["steady_wcu"] / r["steady_captured"]
    one_off = r["close_wcu"] - wcu_per_write  # beyond the closing batch's own capture transaction
    print(f"{label}")
    print(
        f"  captured payments                  {r['captured']:>10,}"
        f"  (steady {r['steady_captured']:,} + the closing batch)"
    )
    print(
        f"  campaign-item write requests       {r['writes']:>10,}  (cancelled transactions: {r['cancelled']})"
    )
    print(
        f"  writes per captured payment        {per_payment:>10.4f}"
        f"  (whole run; target <= {TARGET_WRITES_PER_PAYMENT})"
    )
    print(f"  ceiling at 1,000 writes/s          {ceiling_requests:>10,.0f}  payments/s for one campaign")
    print(
        f"  ceiling at 1,000 WCU/s, 2 WCU/write {ceiling_wcu:>9,.0f}  payments/s "
        f"(transactional, item {r['item_kb']:.2f} KB)"
    )
    print(
        f"  campaign-item WCU per payment      {steady_wcu_per_payment:>10.4f}  (steady state: "
        f"{r['steady']['transactional']} transactional + {r['steady']['plain']} plain writes, "
        f"{r['steady']['cancelled']} cancelled; target <= 2/99 = {TARGET_WCU_PER_PAYMENT:.4f})"
    )
    print(
        f"  steady-state ceiling in WCU        {PARTITION_WCU_PER_SECOND / steady_wcu_per_payment:>10,.0f}"
        "  payments/s for one campaign"
    )
    print(
        f"  one-off close of the campaign      {one_off:>10,}  WCU "
        f"beyond its batch's own transaction ({r['close']['cancelled']} cancelled attempt(s), "
        f"{r['close']['plain']} marker write(s))"
    )
    print(
        f"  one-write-per-payment design       {PARTITION_WCU_PER_SECOND:>10,}  payments/s (for comparison)"
    )
    print(f"  wall time on moto                  {r['elapsed']:>10.2f}  s")
    return (
        per_payment <= TARGET_WRITES_PER_PAYMENT and steady_wcu_per_payment <= TARGET_WCU_PER_PAYMENT + 1e-12
    )


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 495
    print(f"hot campaign: {n:,}+ payments of 1,000 to one campaign, batch size {BATCH_SIZE}")
    with contextlib.redirect_stdout(io.StringIO()):  # the functions' EMF metric lines
        sequential = run(n, racing=False)
        racing = run(n, racing=True)
    ok = report("sequential batches", sequential)
    ok = (
        report(
            "racing pairs of batches (every second batch commits inside the other's read-write window)",
            racing,
        )
        and ok
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
