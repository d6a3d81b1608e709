"""End to end: the embedded runtime behaves like AWS where correctness depends on it.

- a burst makes one queue's event source mapping run several batches at once;
- IAM is enforced: the API is denied outside its task role, and a function whose grant is
  removed at runtime fails with AccessDenied in its own log while the rest keeps working;
- AWS_FAULT_RATE: the functions' and the API's calls fail as AWS fails them (boto3 sees
  throttling and 5xx codes) and payments still settle;
- CRASH_RATE: execution environments are killed mid-invocation, replaced, and payments still end
  in a terminal state.

Each system runs on free ports of 127.0.0.1 and is stopped afterwards; every wait has a deadline.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdas.shared.contract import FUNDINGS_TABLE, TRANSACTIONS_TABLE
from local.demo import Api, campaign_body, table_name
from tests.e2e.local import start_system, wait_for_terminal
from toolchain.embedded.system import LocalSystem
from toolchain.embedded.token import issue_token

pytestmark = pytest.mark.e2e
CALM_GATEWAY = {
    "PG_TRANSIENT_FAILURE_RATE": "0",
    "PG_DECLINE_RATE": "0",
    "PG_LATENCY_MS": "20",
    "PG_SEED": "3",
}
"""A gateway that never fails and takes 20 ms: every invocation of the processor lasts a while."""


def start(tmp_path: Path, **options: Any) -> LocalSystem:
    return start_system(tmp_path, environment_overrides=dict(CALM_GATEWAY), **options)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = start(tmp_path_factory.mktemp("runtime"))
    yield running
    running.stop()


def table_of(system: LocalSystem, logical: str) -> str:
    return table_name(system.state(), logical)


def post(api: Api, path: str, token: str, body: Any) -> tuple[int, Any]:
    """POST with an Idempotency-Key, retried with the same key on a 5xx, a dropped connection or
    a 409 saying the first attempt is still in progress (as a real client does)."""
    key = str(uuid.uuid4())
    status, answer = 0, None
    for attempt in range(8):
        request = urllib.request.Request(f"{api.base}{path}", data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Idempotency-Key", key)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read() or b"null")
        except OSError:
            status, answer = 599, None
        in_progress = status == 409 and "in_progress" in str((answer or {}).get("payload", {}).get("error"))
        if status < 500 and not in_progress:
            break
        time.sleep(0.2 * 2**attempt)
    return status, answer


def pay_many(system: LocalSystem, count: int, clients: int = 16) -> set[str]:
    """A campaign and `count` payments to it from `clients` concurrent backers; the accepted ids."""
    state = system.state()
    users = system.options.workdir / "users.json"
    api = Api(system.api_url)
    creator = issue_token("creator", state, users)
    status, answer = post(
        api, "/api/funding", creator, campaign_body("runtime", "e2e", 10**12, max_amount=10**9)
    )
    assert status == 201, answer
    funding_id = answer["fundingId"]
    backers = [issue_token(f"backer{i}", state, users) for i in range(clients)]

    def pay(index: int) -> str:
        body = {"status": 1, "payload": {"fundingId": funding_id, "amount": 5_000, "paymentMethod": "card"}}
        status, answer = post(api, "/api/payments", backers[index % clients], body)
        assert status == 201, (status, answer)
        return str(answer["paymentId"])

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return set(pool.map(pay, range(count)))


def function_named(system: LocalSystem, prefix: str) -> str:
    assert system.deployment is not None
    found = [name for name in system.deployment.functions if name.startswith(prefix)]
    assert len(found) == 1, (prefix, sorted(system.deployment.functions))
    return found[0]


# --- concurrency ----------------------------------------------------------------------------------


def test_a_burst_runs_several_batches_of_one_queue_at_once(system: LocalSystem) -> None:
    accepted = pay_many(system, 80)
    wait_for_terminal(system, accepted, timeout=240)
    stats = system.stats()
    processor = function_named(system, "payment-processor")
    assert stats["mappingPeakConcurrency"][processor] >= 2, stats["mappingPeakConcurrency"]
    assert stats["peakConcurrency"][processor] >= 2, stats["peakConcurrency"]
    # Each concurrent batch had its own execution environment: more than the one started up front.
    assert stats["environments"][processor] >= 2 and stats["coldStarts"][processor] >= 1, stats


# --- IAM ------------------------------------------------------------------------------------------


def test_the_api_is_denied_outside_its_role_and_allowed_inside_it(system: LocalSystem) -> None:
    api = system.api_session
    assert api is not None
    dynamodb = api.client(
        "dynamodb", system.emulator_url, system.region, Config(retries={"total_max_attempts": 1})
    )
    fundings = table_of(system, FUNDINGS_TABLE.logical_name)
    dynamodb.get_item(TableName=fundings, Key={"fundingId": {"S": "no-such-campaign"}})  # inside its role
    for outside in (
        lambda: dynamodb.delete_table(TableName=fundings),
        lambda: dynamodb.scan(TableName=table_of(system, TRANSACTIONS_TABLE.logical_name)),
    ):
        with pytest.raises(ClientError) as denied:
            outside()
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert ":assumed-role/" in denied.value.response["Error"]["Message"]
    role = api.role_arn.rsplit("/", 1)[-1]
    assert system.stats()["accessDenied"][role] >= 2


def test_a_function_whose_grant_is_removed_fails_with_access_denied_in_its_log(system: LocalSystem) -> None:
    assert system.deployment is not None
    recorder = function_named(system, "ledger-recorder")
    role = system.deployment.role_named(system.deployment.functions[recorder].role)
    assert role is not None
    ledger_arn = f"table/{table_of(system, TRANSACTIONS_TABLE.logical_name)}"
    iam = system.client("iam")
    originals = {
        name: iam.get_role_policy(RoleName=role.name, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role.name)["PolicyNames"]
    }
    try:
        for name, document in originals.items():  # the admin session takes the ledger grant away
            document = document if isinstance(document, dict) else json.loads(document)
            statements = (
                document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
            )
            kept = [s for s in statements if not any(ledger_arn in str(r) for r in _list(s.get("Resource")))]
            iam.put_role_policy(
                RoleName=role.name,
                PolicyName=name,
                PolicyDocument=json.dumps({**document, "Statement": kept}),
            )
        log = system.fleet.log_path(recorder) if system.fleet else Path()
        before = log.read_text() if log.exists() else ""
        accepted = pay_many(system, 4, clients=4)
        wait_for_terminal(system, accepted, timeout=120)  # payments do not need the ledger
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "AccessDenied" not in log.read_text()[len(before) :]:
            time.sleep(1)
        written = log.read_text()[len(before) :]
        assert "AccessDenied" in written, written[-2000:]
        assert system.stats()["accessDenied"].get(role.name, 0) >= 1
    finally:
        for name, document in originals.items():
            iam.put_role_policy(
                RoleName=role.name,
                PolicyName=name,
                PolicyDocument=document if isinstance(document, str) else json.dumps(document),
            )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- faults ---------------------------------------------------------------------------------------

AWS_FAULT_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "InternalServerError",
    "ServiceUnavailable",
}


def test_aws_faults_reach_boto3_as_aws_sends_them_and_payments_still_settle(tmp_path: Path) -> None:
    system = start(tmp_path, aws_fault_rate=0.2, fault_seed=5)
    try:
        # What an SDK with retries off sees, signed as the API's task role (a faulted session).
        api = system.api_session
        assert api is not None
        dynamodb = api.client(
            "dynamodb", system.emulator_url, system.region, Config(retries={"total_max_attempts": 1})
        )
        fundings = table_of(system, FUNDINGS_TABLE.logical_name)
        seen: Counter[str] = Counter()
        for _ in range(120):
            try:
                dynamodb.get_item(TableName=fundings, Key={"fundingId": {"S": "x"}})
                seen["ok"] += 1
            except ClientError as exc:
                seen[exc.response["Error"]["Code"]] += 1
        faults = {code: n for code, n in seen.items() if code != "ok"}
        assert set(faults) <= AWS_FAULT_CODES, seen
        assert 8 <= sum(faults.values()) <= 45 and seen["ok"] >= 60, seen
        # The runner's own calls are never faulted.
        runner = system.client("dynamodb")
        for _ in range(30):
            runner.get_item(TableName=fundings, Key={"fundingId": {"S": "x"}})
        accepted = pay_many(system, 12, clients=6)
        states = wait_for_terminal(system, accepted, timeout=300)
        assert Counter(states.values())["CAPTURED"] >= 1, states
        stats = system.stats()
        assert stats["awsFaultsInjected"] >= sum(faults.values()) + 1, stats["awsFaultsByCode"]
    finally:
        system.stop()


def test_crashes_kill_environments_which_are_replaced_and_payments_still_end_terminal(tmp_path: Path) -> None:
    system = start(tmp_path, crash_rate=0.2, fault_seed=7)
    try:
        accepted = pay_many(system, 30, clients=8)
        wait_for_terminal(system, accepted, timeout=360)
        stats = system.stats()
        assert stats["crashes"] >= 1, stats
        crashed = [name for name, count in stats["crashesByFunction"].items() if count]
        assert any(stats["coldStarts"][name] >= 1 for name in crashed), stats  # replaced
        logs = "".join(system.fleet.log_path(name).read_text() for name in crashed) if system.fleet else ""
        assert "Runtime.ExitError" in logs and "CRASH_RATE: killing this execution environment" in logs
    finally:
        system.stop()
