"""`make audit`: audit every campaign's books once and print the balance sheets and findings.

The rules are the books auditor's own (`lambdas.shared.books`, which the scheduled
`books_auditor` function runs): ledger captured - refunded = fundingAmount = sum of CAPTURED
payments, every terminal payment's events in the ledger exactly once, nothing non-terminal or
holding an authorization past the horizon, no captured money left on a failed or deleted
campaign. Exit status 1 when there is any finding, 0 when the books are clean, 2 on bad usage.

    make audit                                   # the running local system (.run/local.json)
    python -m local.audit --fundings T --payments T --transactions T [--region R] --stack dev
    python -m local.audit ... --horizon 0  # after the system went quiet: nothing in flight

Against a stack's tables it uses the default AWS credentials (read-only calls: Scan, Query,
GetItem). The horizon is the deployed auditor's (locally: read from the running system), or
computed from a stack's retry settings (`--stack`), or given (`--horizon`). Everything is read
with paginated, strongly consistent scans (progress on stderr); a campaign with findings is read
again (Query, as the auditor does) after a short pause and only findings both reads agree on are
printed, so money moving while the tables are read raises nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared import contract
from lambdas.shared.books import BalanceSheet, CampaignAudit, audit_campaign, confirmed

Progress = Callable[[str], None]
CONFIRM_PAUSE_SECONDS = 2.0
"""Pause before the second read of campaigns with findings (the byFunding index catches up)."""
NO_CAMPAIGN = "(no item)"
"""State shown for payments or ledger rows whose campaign item does not exist."""


class AuditUsageError(ValueError):
    """The command line or the local system cannot say what to audit; the message says how to fix it."""


@dataclass
class Target:
    """The three tables to audit and the horizon to judge them with."""

    dynamodb: Any
    fundings: str
    payments: str
    transactions: str
    horizon_seconds: int
    where: str


_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → Python values (numbers stay Decimal: the books read them as ints)."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- reading ---------------------------------------------------------------------------------


def scan_all(dynamodb: Any, table: str, label: str, progress: Progress) -> list[dict[str, Any]]:
    """Every item of `table`, strongly consistent, page by page (progress after each page)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        items += [from_attributes(raw) for raw in page.get("Items", [])]
        progress(f"reading {label} ({table}): {len(items):,} items")
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _query(dynamodb: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**kwargs)
        items += [from_attributes(raw) for raw in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _campaign(target: Target, funding_id: str) -> dict[str, Any] | None:
    key = to_attributes({contract.FUNDINGS_TABLE.partition_key: funding_id})
    item = target.dynamodb.get_item(TableName=target.fundings, Key=key, ConsistentRead=True).get("Item")
    return from_attributes(item) if item else None


def reread(target: Target, funding_id: str, now: datetime) -> CampaignAudit:
    """One campaign read as the auditor reads it (campaign, payments, ledger, campaign) and audited."""
    before = _campaign(target, funding_id) or {"fundingId": funding_id, "state": NO_CAMPAIGN}
    payments = _query(
        target.dynamodb,
        TableName=target.payments,
        IndexName=contract.PAYMENTS_BY_FUNDING_INDEX,
        KeyConditionExpression="fundingId = :fid",
        ExpressionAttributeValues=to_attributes({":fid": funding_id}),
    )
    ledger = _query(
        target.dynamodb,
        TableName=target.transactions,
        KeyConditionExpression=f"{contract.TRANSACTIONS_TABLE.partition_key} = :fid",
        ExpressionAttributeValues=to_attributes({":fid": funding_id}),
        ConsistentRead=True,
    )
    after = _campaign(target, funding_id) or before
    return audit_campaign(
        before, payments, ledger, now=now, horizon_seconds=target.horizon_seconds, campaign_after=after
    )


def audit_all(
    target: Target,
    *,
    progress: Progress = _stderr,
    pause: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[CampaignAudit]:
    """Every campaign's audit (campaigns with findings confirmed by a second read), by campaign id."""
    campaigns = scan_all(target.dynamodb, target.fundings, "campaigns", progress)
    payments = scan_all(target.dynamodb, target.payments, "payments", progress)
    ledger = scan_all(target.dynamodb, target.transactions, "ledger rows", progress)
    now = clock()
    payments_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payment in payments:
        payments_of[str(payment.get("fundingId", ""))].append(payment)
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ledger:
        rows_of[str(row.get(contract.TRANSACTIONS_TABLE.partition_key, ""))].append(row)
    items = {str(c["fundingId"]): c for c in campaigns}
    for orphan in (set(payments_of) | set(rows_of)) - set(items):
        items[orphan] = {"fundingId": orphan, "state": NO_CAMPAIGN}
    audits = {
        funding_id: audit_campaign(
            item,
            payments_of.get(funding_id, []),
            rows_of.get(funding_id, []),
            now=now,
            horizon_seconds=target.horizon_seconds,
        )
        for funding_id, item in sorted(items.items())
    }
    suspects = [funding_id for funding_id, audit in audits.items() if audit.findings]
    if suspects:
        progress(f"re-reading {len(suspects)} campaign(s) with findings to confirm them")
        pause(CONFIRM_PAUSE_SECONDS)
        for funding_id in suspects:
            audits[funding_id] = confirmed(audits[funding_id], reread(target, funding_id, clock()))
    return list(audits.values())


# --- printing --------------------------------------------------------------------------------

_COLUMNS = (
    ("campaign", "<"),
    ("state", "<"),
    ("goal", ">"),
    ("fundingAmount", ">"),
    ("Σ CAPTURED", ">"),
    ("ledger +", ">"),
    ("ledger -", ">"),
    ("in flight", ">"),
    ("findings", ">"),
    ("payments by state", "<"),
)


def _row(sheet: BalanceSheet, findings: int) -> list[str]:
    in_flight = sheet.in_flight_captured - sheet.in_flight_refunded
    return [
        sheet.funding_id,
        sheet.state + (" (moving)" if sheet.moving else ""),
        f"{sheet.goal_amount:,}",
        f"{sheet.funding_amount:,}",
        f"{sheet.captured_total:,}",
        f"{sheet.ledger_captured:,}",
        f"{sheet.ledger_refunded:,}",
        f"{in_flight:+,}" if in_flight else "0",
        str(findings),
        ", ".join(f"{state} {n}" for state, n in sheet.payments_by_state.items()) or "-",
    ]


def render(audits: Sequence[CampaignAudit], *, horizon_seconds: int, where: str) -> str:
    """The balance-sheet table, then every finding, then a one-line verdict."""
    rows = [[name for name, _ in _COLUMNS]] + [_row(a.sheet, len(a.findings)) for a in audits]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [f"books of {where} (horizon {horizon_seconds:,} s)", ""]
    for row in rows:
        cells = [
            f"{cell:{align}{width}}" for cell, (_, align), width in zip(row, _COLUMNS, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    findings = [finding for audit in audits for finding in audit.findings]
    payments = sum(audit.sheet.payments for audit in audits)
    lines.append("")
    if findings:
        lines.append(f"findings ({len(findings)}):")
        lines += [f"  [{finding.kind}] {finding.message}" for finding in findings]
        lines.append("")
        lines.append(
            f"{len(findings)} finding(s) in {sum(1 for a in audits if a.findings)} of {len(audits)} "
            f"campaign(s), {payments:,} payment(s)"
        )
    else:
        lines.append(f"the books balance: {len(audits)} campaign(s), {payments:,} payment(s), no findings")
    return "\n".join(lines)


# --- what to audit ---------------------------------------------------------------------------


def _local_horizon(state: dict[str, Any]) -> int:
    for function in state.get("deployment", {}).get("functions", {}).values():
        value = (function.get("environment") or {}).get(contract.ENV_SETTLEMENT_HORIZON_SECONDS)
        if value:
            return int(value)
    return stack_horizon("local")


def stack_horizon(stack: str) -> int:
    """The horizon a stack's auditor gets (from `Pulumi.<stack>.yaml`'s retry settings)."""
    from infra.config import parse
    from infra.payment_chain import settlement_horizon
    from toolchain.project import read_stack_config

    return settlement_horizon(parse(stack, read_stack_config(stack)))


def local_target(horizon: int | None) -> Target:
    """The running local system's tables (from its state file, as `make token` finds it)."""
    from toolchain.embedded.emulator import emulator_client
    from toolchain.embedded.token import NotRunning, read_state

    try:
        state = read_state()
    except NotRunning as exc:
        raise AuditUsageError(
            f"{exc}; or audit a stack's tables: --fundings T --payments T --transactions T --stack S"
        ) from exc
    names: dict[str, str] = {}
    for function in state.get("deployment", {}).get("functions", {}).values():
        for spec in (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE, contract.TRANSACTIONS_TABLE):
            value = (function.get("environment") or {}).get(spec.env_var)
            if value:
                names.setdefault(spec.logical_name, value)
    missing = [
        spec.env_var
        for spec in (contract.FUNDINGS_TABLE, contract.PAYMENTS_TABLE, contract.TRANSACTIONS_TABLE)
        if spec.logical_name not in names
    ]
    if missing:
        raise AuditUsageError(
            f"the running local system's functions name no {', '.join(missing)}: restart it with `make run`"
        )
    return Target(
        dynamodb=emulator_client("dynamodb", state["emulator"], state["region"]),
        fundings=names[contract.FUNDINGS_TABLE.logical_name],
        payments=names[contract.PAYMENTS_TABLE.logical_name],
        transactions=names[contract.TRANSACTIONS_TABLE.logical_name],
        horizon_seconds=horizon if horizon is not None else _local_horizon(state),
        where=f"the local system at {state['emulator']}",
    )


def parser() -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(
        prog="make audit",
        description="Audit every campaign's books (tables and ledger); exit 1 when anything is wrong.",
    )
    cli.add_argument("--fundings", help="the campaigns table of a stack (default: the local system's)")
    cli.add_argument("--payments", help="the payments table of that stack")
    cli.add_argument("--transactions", help="the ledger (transactions) table of that stack")
    cli.add_argument("--region", help="AWS region of the tables (default: your AWS configuration's)")
    cli.add_argument("--stack", help="take the horizon from Pulumi.<stack>.yaml's retry settings")
    cli.add_argument(
        "--horizon",
        type=int,
        metavar="SECONDS",
        help="how long a change may take to settle and reach the ledger (0: nothing in flight)",
    )
    return cli


def target_from(args: argparse.Namespace) -> Target:
    """What the arguments point at, or AuditUsageError saying what is missing."""
    if args.horizon is not None and args.horizon < 0:
        raise AuditUsageError(f"--horizon {args.horizon}: allowed: 0 or more seconds")
    tables = (args.fundings, args.payments, args.transactions)
    if not any(tables):
        if args.region:
            raise AuditUsageError(
                "--region applies to a stack's tables: pass --fundings, --payments, --transactions"
            )
        horizon = (
            args.horizon if args.horizon is not None else (stack_horizon(args.stack) if args.stack else None)
        )
        return local_target(horizon)
    if not all(tables):
        raise AuditUsageError("pass all three tables: --fundings T --payments T --transactions T")
    if args.horizon is None and not args.stack:
        raise AuditUsageError(
            "against a stack's tables pass --stack <name> (its retry settings give the horizon) "
            "or --horizon SECONDS"
        )
    horizon = args.horizon if args.horizon is not None else stack_horizon(args.stack)
    session = boto3.session.Session(region_name=args.region)
    return Target(
        dynamodb=session.client("dynamodb"),
        fundings=args.fundings,
        payments=args.payments,
        transactions=args.transactions,
        horizon_seconds=horizon,
        where=f"tables {args.fundings}, {args.payments}, {args.transactions}",
    )


def main(argv: Sequence[str] | None = None, *, pause: Callable[[float], None] = time.sleep) -> int:
    """CLI entry: 0 clean, 1 findings, 2 cannot audit (the message says why)."""
    args = parser().parse_args(argv)
    try:
        target = target_from(args)
        audits = audit_all(target, pause=pause)
    except (AuditUsageError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: reading the tables failed: {exc}", file=sys.stderr)
        return 2
    print(render(audits, horizon_seconds=target.horizon_seconds, where=target.where))
    return 1 if any(audit.findings for audit in audits) else 0


if __name__ == "__main__":
    sys.exit(main())
