"""`make demo`: the crowdfunding story, told against the running local system.

A creator opens a campaign; backers pay (some are declined, some hit transient gateway errors
that are retried); the goal is reached; a payment that arrives just too late is cancelled and
voided; emails go out. It ends with a summary read back from the API and the ledger.
Against a running `make run` it uses that system; otherwise it starts one (with a gateway that
declines and fails now and then) and stops it at the end.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from lambdas.shared.contract import TERMINAL_PAYMENT_STATES, TRANSACTIONS_TABLE, PaymentState
from local import PRODUCT
from toolchain.embedded.emulator import emulator_client, emulator_resource
from toolchain.embedded.system import STATE_FILE, LocalSystem, SystemOptions
from toolchain.embedded.token import issue_token

DEMO_GATEWAY = {"PG_TRANSIENT_FAILURE_RATE": "0.3", "PG_DECLINE_RATE": "0.2", "PG_SEED": "7"}
GOAL = 100_000
SMALL_PAYMENT = 5_000
TERMINAL = {str(s) for s in TERMINAL_PAYMENT_STATES}
FINALISTS = ("backer9", "backer10", "backer11", "backer12")
"""Four backers race to complete the goal: one payment crosses it, the others arrive too late."""


class DemoError(RuntimeError):
    """The story could not be completed; the message says where it stopped."""


def say(line: str) -> None:
    """Progress output."""
    print(line, flush=True)


@dataclass
class Api:
    """A tiny client for the API (standard library only: the demo shows the wire)."""

    base: str

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, Any]:
        """One request; `idempotency_key` sends the header a retrying client sends."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if idempotency_key:
            request.add_header("Idempotency-Key", idempotency_key)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@dataclass
class Story:
    """What happened, for the summary and for the tests."""

    funding_id: str = ""
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaign: dict[str, Any] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    emails_sent: int = 0

    def states(self) -> Counter[str]:
        """How many payments ended in each state."""
        return Counter(p["state"] for p in self.payments.values())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_body(
    title: str, description: str, goal: int, *, days: int = 10, max_amount: int = 50_000
) -> dict[str, Any]:
    """A POST /api/funding body for a campaign open from a minute ago for `days` days."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "title": title,
        "description": description,
        "goalAmount": goal,
        "duration": days,
        "startDate": _iso(start),
        "endDate": _iso(start + timedelta(days=days)),
        "status": "OPEN",
        "fundingAmount": 0,
        "minAmount": 1_000,
        "maxAmount": max_amount,
    }


def wait_terminal(api: Api, token_of: dict[str, str], ids: list[str], story: Story, timeout: float) -> None:
    """Poll until every payment in `ids` is in a terminal state (or raise)."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        for payment_id in sorted(pending):
            status, body = api.call("GET", f"/api/payments/{payment_id}", token_of[payment_id])
            if status == 200:
                payment = body["payload"]
                if payment["state"] in TERMINAL:
                    story.payments[payment_id] = payment
                    pending.discard(payment_id)
        if pending and time.monotonic() > deadline:
            raise DemoError(f"{len(pending)} payments did not reach a terminal state within {timeout:.0f}s")
        if pending:
            time.sleep(0.5)


def pay(api: Api, token: str, funding_id: str, amount: int, method: str = "card") -> str:
    """POST /api/payments; returns the payment id."""
    body = {"status": 1, "payload": {"fundingId": funding_id, "amount": amount, "paymentMethod": method}}
    status, answer = api.call("POST", "/api/payments", token, body)
    if status not in (201, 202):
        raise DemoError(f"payment refused: {status} {answer}")
    return str(answer.get("paymentId") or answer["payload"].get("paymentId"))


def tell(state: dict[str, Any], timeout: float = 240.0) -> Story:
    """Run the story against the system described by `state`; returns what happened."""
    api = Api(state["api"])
    story = Story()
    tokens = {name: issue_token(name, state) for name in ["creator", *[f"backer{i}" for i in range(1, 13)]]}
    campaign = campaign_body(
        "A bicycle library for the neighbourhood",
        "Shared bikes, maintained by volunteers.",
        GOAL,
        days=30,
        max_amount=GOAL,
    )
    status, answer = api.call("POST", "/api/funding", tokens["creator"], campaign)
    if status != 201:
        raise DemoError(f"creating the campaign failed: {status} {answer}")
    story.funding_id = str(answer["fundingId"])
    say(f"1. creator opened campaign {story.funding_id}: goal {GOAL:,} KRW")

    token_of: dict[str, str] = {}
    backers = iter(range(1, 9))
    say(f"2. backers pay {SMALL_PAYMENT:,} KRW each until the gateway has declined one …")
    while True:
        batch = []
        for _ in range(4):
            backer = f"backer{next(backers)}"
            payment_id = pay(api, tokens[backer], story.funding_id, SMALL_PAYMENT)
            token_of[payment_id] = tokens[backer]
            batch.append(payment_id)
        wait_terminal(api, token_of, batch, story, timeout)
        for payment_id in batch:
            say(f"   payment {payment_id[:8]} … {story.payments[payment_id]['state']}")
        if story.states()[str(PaymentState.DECLINED)] or len(token_of) >= 8:  # backers 1-8
            break

    for _round in range(3):  # a round whose finalists are all declined leaves the campaign open
        status, answer = api.call("GET", f"/api/funding/{story.funding_id}")
        if answer["payload"]["state"] != "OPEN":
            break
        raised = int(answer["payload"]["fundingAmount"])
        remaining = GOAL - raised
        say(f"3. raised {raised:,} of {GOAL:,}; four backers now send {remaining:,} KRW each at once …")
        finalists = []
        for backer in FINALISTS:
            payment_id = pay(api, tokens[backer], story.funding_id, remaining)
            token_of[payment_id] = tokens[backer]
            finalists.append(payment_id)
        wait_terminal(api, token_of, finalists, story, timeout)
        for payment_id in finalists:
            say(f"   payment {payment_id[:8]} … {story.payments[payment_id]['state']}")

    deadline = time.monotonic() + timeout
    while True:
        status, answer = api.call("GET", f"/api/funding/{story.funding_id}")
        story.campaign = answer["payload"]
        if story.campaign["state"] != "OPEN" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    say(f"4. campaign is {story.campaign['state']} with {int(story.campaign['fundingAmount']):,} KRW")

    dynamodb = emulator_resource("dynamodb", state["emulator"], state["region"])
    table = dynamodb.Table(table_name(state, TRANSACTIONS_TABLE.logical_name))
    expected = {(pid, f"payment.{p['state'].lower()}") for pid, p in story.payments.items()}
    deadline = time.monotonic() + 60
    while True:  # the ledger records asynchronously: wait until it holds every payment's final event
        items = table.query(KeyConditionExpression=Key("fundingId").eq(story.funding_id))["Items"]
        recorded = {(str(item.get("paymentId")), str(item.get("type"))) for item in items}
        if expected <= recorded or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    story.ledger = sorted(items, key=lambda item: str(item.get("recordKey")))
    ses = emulator_client("ses", state["emulator"], state["region"])
    story.emails_sent = int(ses.get_send_quota().get("SentLast24Hours", 0))
    if state.get("lambdaApi"):
        with urllib.request.urlopen(f"{state['lambdaApi']}/_local/stats", timeout=5) as response:
            story.stats = json.loads(response.read())
    return story


def table_name(state: dict[str, Any], logical: str) -> str:
    """The emulator's name for a table the program declared (read from the deployment)."""
    for type_token, name, physical in state["deployment"]["created"]:
        if type_token == "aws:dynamodb/table:Table" and logical in name:
            return str(physical)
    raise DemoError(f"the local deployment has no table for {logical!r}")


def summary(story: Story) -> str:
    """The closing table."""
    lines = ["", f"{'payment':<10} {'amount':>10}  state"]
    for payment_id, payment in story.payments.items():
        lines.append(f"{payment_id[:8]:<10} {int(payment['amount']):>10,}  {payment['state']}")
    states = story.states()
    captured = sum(int(p["amount"]) for p in story.payments.values() if p["state"] == "CAPTURED")
    events = Counter(str(item.get("type")) for item in story.ledger)
    retried = sum((story.stats.get("recordsRetried") or {}).values())
    lines += [
        "",
        f"campaign {story.funding_id}: {story.campaign.get('state')}, "
        f"fundingAmount {int(story.campaign.get('fundingAmount', 0)):,} (sum of CAPTURED: {captured:,})",
        "payments by state: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
        "ledger events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())),
        f"records retried after transient gateway errors: {retried}",
        f"emails sent: {story.emails_sent}",
    ]
    return "\n".join(lines)


def main() -> int:
    """CLI entry: use the running system, or start one for the story."""
    system: LocalSystem | None = None
    try:
        if STATE_FILE.exists():
            state = json.loads(STATE_FILE.read_text())
            say(f"using the running local system at {state['api']}")
        else:
            say("no running system found: starting one for the demo (gateway declines 20%, fails 30%) …")
            options = SystemOptions.from_environment(PRODUCT)
            options.environment_overrides = {**DEMO_GATEWAY, **options.environment_overrides}
            system = LocalSystem(options, progress=lambda line: say(f"   {line}"))
            system.start()
            state = system.state()
        story = tell(state)
        say(summary(story))
        return 0
    except DemoError as exc:
        print(f"demo stopped: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:  # the system could not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if system is not None:
            system.stop()


if __name__ == "__main__":
    sys.exit(main())
