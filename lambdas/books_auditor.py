"""books_auditor (scheduled): check every campaign's books from the tables and the ledger.

Trigger: EventBridge schedule (the event's content is not used). Out: a log line per finding
and EMF metrics: one per finding kind and BooksFindings, their total (0 included, so the alarm
on it always sees data), plus CampaignsAudited and AuditsCompleted (1 when every campaign in
scope was audited: the alarm on its absence says the books are no longer being checked). It
writes nothing.

The rules are `lambdas.shared.books` (the same ones `make audit` runs). Which campaigns, and why
that is bounded:
- every OPEN campaign (their money is moving);
- every campaign, whatever its state, whose endDate is within the last `AUDIT_WINDOW` or later
  (deleted ones included: the API only deletes before the deadline). After its deadline a
  campaign's money moves only while it settles (refunds, cancels, the sweeper: within the
  horizon, hours); a week more of audits keeps a finding in the metric, hence the alarm, long
  enough to be seen, then the books are final;
- FAILED and DELETED campaigns of any age whose refunds never completed (no
  `refundsCompletedAt`): money may still be held there, so they never age out. A healthy
  system has few (the closer completes refunds within minutes).
Per campaign: its payments (byFunding index) and ledger rows (Query), then the campaign again
(strongly consistent), so a campaign whose money moved during the read is not judged on a torn
read. Campaigns with findings are read and audited a second time after a short pause and only
findings both reads agree on are reported (the index is eventually consistent). A run stops
before its timeout; an incomplete run emits AuditsCompleted 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.shared import aws
from lambdas.shared import contract as c
from lambdas.shared.books import CampaignAudit, Finding, audit_campaign, confirmed, finding_counts
from lambdas.shared.config import env_int, env_str, require_environment
from lambdas.shared.contract import CampaignState, Metric
from lambdas.shared.telemetry import function_logger, function_metrics
from lambdas.specs.books_auditor import SPEC

require_environment(SPEC.environment, function=SPEC.name)

AUDIT_WINDOW = timedelta(days=7)
"""How long after its endDate a settled campaign is still audited (see the module docstring)."""
CONFIRM_PAUSE_SECONDS = 2.0
"""Pause before the second read of campaigns with findings: the byFunding index catches up."""
RESERVED_MILLIS = 30_000
"""Time kept back from the function's timeout: the run stops and reports before it."""
MAX_FINDINGS_LOGGED = 1000
"""A flood of findings (a systemic fault) is logged up to this many lines per run, then counted."""
UNSUCCESSFUL = (CampaignState.FAILED, CampaignState.DELETED)

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)

_STATE = {"#state": "state"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaigns_in_scope(now: datetime) -> list[dict[str, Any]]:
    """The campaigns to audit (byStateEndDate index), each once, in a stable order."""
    table = env_str(c.FUNDINGS_TABLE.env_var)
    since = _iso(now - AUDIT_WINDOW)

    def query(state: str, key_condition: str, **extra: Any) -> list[dict[str, Any]]:
        values = {":state": state, **({":since": since} if ":since" in key_condition else {})}
        return list(
            aws.query(
                table,
                index=c.FUNDINGS_BY_STATE_INDEX,
                key_condition=key_condition,
                values=values,
                names=_STATE,
                **extra,
            )
        )

    found: dict[str, dict[str, Any]] = {}
    for item in query(str(CampaignState.OPEN), "#state = :state"):
        found.setdefault(item["fundingId"], item)
    for state in (CampaignState.SUCCEEDED, *UNSUCCESSFUL):
        for item in query(str(state), "#state = :state AND endDate >= :since"):
            found.setdefault(item["fundingId"], item)
    for state in UNSUCCESSFUL:
        old = query(
            str(state),
            "#state = :state AND endDate < :since",
            filter_expression="attribute_not_exists(refundsCompletedAt)",
        )
        for item in old:
            found.setdefault(item["fundingId"], item)
    return [found[key] for key in sorted(found)]


def read_books(
    funding_id: str, campaign: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(campaign before, payments, ledger rows, campaign after) of one campaign.

    `campaign`, when given, is the item already read (from the index); otherwise it is read
    strongly consistent first. The campaign is always read again last.
    """
    fundings = env_str(c.FUNDINGS_TABLE.env_var)
    key = {c.FUNDINGS_TABLE.partition_key: funding_id}
    before = campaign if campaign is not None else aws.get_item(fundings, key)
    payments = list(
        aws.query(
            env_str(c.PAYMENTS_TABLE.env_var),
            index=c.PAYMENTS_BY_FUNDING_INDEX,
            key_condition="fundingId = :fid",
            values={":fid": funding_id},
        )
    )
    ledger = list(
        aws.query(
            env_str(c.TRANSACTIONS_TABLE.env_var),
            index=None,
            key_condition=f"{c.TRANSACTIONS_TABLE.partition_key} = :fid",
            values={":fid": funding_id},
        )
    )
    after = aws.get_item(fundings, key)
    return before, payments, ledger, after


def _audit(
    funding_id: str, now: datetime, horizon: int, campaign: dict[str, Any] | None = None
) -> CampaignAudit | None:
    before, payments, ledger, after = read_books(funding_id, campaign)
    if before is None or after is None:
        return None  # deleted from the table while we read (never happens: deletion is soft)
    return audit_campaign(before, payments, ledger, now=now, horizon_seconds=horizon, campaign_after=after)


def pause(seconds: float) -> None:
    """Wait between the two reads of suspect campaigns (a seam for tests)."""
    time.sleep(seconds)


def _remaining_millis(context: Any) -> Callable[[], int]:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter if callable(getter) else (lambda: 10**9)


def _log_findings(findings: list[Finding]) -> None:
    for finding in findings[:MAX_FINDINGS_LOGGED]:
        logger.warning(finding.message, extra=finding.as_log())
    if len(findings) > MAX_FINDINGS_LOGGED:
        logger.warning(
            "more findings than logged; `make audit` against the stack's tables lists them all",
            extra={"notLogged": len(findings) - MAX_FINDINGS_LOGGED},
        )


def _emit(findings: list[Finding], audited: int, complete: bool) -> None:
    for metric, value in finding_counts(findings).items():
        metrics.add_metric(name=str(metric), unit=MetricUnit.Count, value=value)
    metrics.add_metric(name=str(Metric.BOOKS_FINDINGS), unit=MetricUnit.Count, value=len(findings))
    metrics.add_metric(name=str(Metric.CAMPAIGNS_AUDITED), unit=MetricUnit.Count, value=audited)
    metrics.add_metric(name=str(Metric.AUDITS_COMPLETED), unit=MetricUnit.Count, value=1 if complete else 0)
    metrics.flush_metrics()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One scheduled audit; returns its summary (also logged)."""
    now = datetime.now(UTC)
    horizon = env_int(c.ENV_SETTLEMENT_HORIZON_SECONDS, minimum=0)
    remaining = _remaining_millis(context)
    campaigns = campaigns_in_scope(now)
    audits: dict[str, CampaignAudit] = {}
    errors = 0
    complete = True
    for campaign in campaigns:
        if remaining() < RESERVED_MILLIS:
            complete = False
            break
        funding_id = campaign["fundingId"]
        try:
            audit = _audit(funding_id, now, horizon, campaign)
        except Exception:
            errors += 1
            logger.exception(
                "reading a campaign's books failed; the next run retries", extra={"fundingId": funding_id}
            )
            continue
        if audit is not None:
            audits[funding_id] = audit
    suspects = [funding_id for funding_id, audit in audits.items() if audit.findings]
    if suspects and remaining() > RESERVED_MILLIS + CONFIRM_PAUSE_SECONDS * 1000:
        pause(CONFIRM_PAUSE_SECONDS)
    for funding_id in suspects:
        if remaining() < RESERVED_MILLIS:
            complete = False  # unconfirmed findings are not reported: the next run reads them again
            audits[funding_id] = CampaignAudit(audits[funding_id].sheet)
            continue
        try:
            again = _audit(funding_id, datetime.now(UTC), horizon)
        except Exception:
            errors += 1
            logger.exception(
                "re-reading a campaign's books failed; the next run retries", extra={"fundingId": funding_id}
            )
            audits[funding_id] = CampaignAudit(audits[funding_id].sheet)
            continue
        audits[funding_id] = (
            confirmed(audits[funding_id], again) if again else CampaignAudit(audits[funding_id].sheet)
        )
    complete = complete and errors == 0
    findings = [finding for audit in audits.values() for finding in audit.findings]
    _log_findings(findings)
    for audit in audits.values():
        if audit.findings:
            sheet = audit.sheet
            logger.warning(
                "balance sheet of a campaign with findings",
                extra={
                    "fundingId": sheet.funding_id,
                    "state": sheet.state,
                    "fundingAmount": sheet.funding_amount,
                    "capturedTotal": sheet.captured_total,
                    "ledgerCaptured": sheet.ledger_captured,
                    "ledgerRefunded": sheet.ledger_refunded,
                    "inFlightCaptured": sheet.in_flight_captured,
                    "inFlightRefunded": sheet.in_flight_refunded,
                    "paymentsByState": dict(sheet.payments_by_state),
                },
            )
    _emit(findings, len(audits), complete)
    summary: dict[str, Any] = {
        "campaignsInScope": len(campaigns),
        "campaignsAudited": len(audits),
        "findings": len(findings),
        "byKind": {str(metric): n for metric, n in finding_counts(findings).items() if n},
        "errors": errors,
        "complete": complete,
        "horizonSeconds": horizon,
    }
    logger.info("books audit run", extra=summary)
    return summary
