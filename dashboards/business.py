"""This product's business dashboard and books alarms, as data: which metrics, which panels.

Built with the library's builders (`awsblocks.observability`); `infra/observability.py` gives them
the stack's resources. Every `contract.Metric` appears in exactly one panel (a test checks).
"""

from __future__ import annotations

from awsblocks.observability.business import MetricPanel

from lambdas.shared import books, contract
from lambdas.shared.books import FindingKind
from lambdas.shared.contract import Metric
from lambdas.specs import catalog

EVENT_TYPE_LOG_KEY = "eventType"
"""The log key `lambdas.shared.telemetry.correlated` writes each event's type under."""

AUDITOR = "books_auditor"
"""The function that audits the books (lambdas/books_auditor.py)."""
LEDGER = "ledger_recorder"
"""The function that emits LedgerConflicts."""
FINDING_METRICS: tuple[Metric, ...] = tuple(books.METRIC_OF_KIND.values())
AUDIT_PERIOD = books.rate_seconds(catalog.schedule_of(catalog.spec_of(AUDITOR)))
"""Seconds between audits: one data point per metric per period."""
AUDIT_SILENT_SECONDS = 3600
"""No complete audit for this long (4 missed runs at 15 minutes) alarms."""

FINDING_ADVICE: dict[FindingKind, str] = {
    FindingKind.BOOKS_UNBALANCED: (
        "campaigns whose ledger (captured - refunded), fundingAmount and sum of CAPTURED payments disagree"
    ),
    FindingKind.LEDGER_EVENT_MISSING: "terminal payments whose event is not in the ledger past the horizon",
    FindingKind.LEDGER_EVENT_DUPLICATED: "payment events the ledger records more than once",
    FindingKind.LEDGER_EVENT_UNEXPECTED: "ledger events that contradict their payment's state",
    FindingKind.PAYMENT_STUCK: "payments still PENDING or APPROVED past the settlement horizon",
    FindingKind.AUTHORIZATION_HELD: "authorizations neither captured nor voided past the horizon",
    FindingKind.REFUNDS_OVERDUE: "failed or deleted campaigns holding captured money after refunds were due",
}
"""What each finding means, for its alarm's description."""

PAYMENT_STATES = (
    Metric.PAYMENTS_REQUESTED,
    Metric.PAYMENTS_CAPTURED,
    Metric.PAYMENTS_DECLINED,
    Metric.PAYMENTS_FAILED,
    Metric.PAYMENTS_CANCELLED,
    Metric.PAYMENTS_REFUNDED,
)

BUSINESS_PANELS: tuple[MetricPanel, ...] = (
    MetricPanel(
        "Payments per 5 minutes",
        tuple(PAYMENT_STATES),
        labels={m.value: m.value.removeprefix("Payments").lower() for m in PAYMENT_STATES},
        y_label="Payments",
    ),
    MetricPanel(
        "Amount captured per 5 minutes",
        (Metric.AMOUNT_CAPTURED,),
        labels={Metric.AMOUNT_CAPTURED: "captured (smallest currency unit)"},
        y_label="Amount",
    ),
    MetricPanel("Goals reached per 5 minutes", (Metric.GOALS_REACHED,), y_label="Campaigns", width=8),
    MetricPanel("Retry attempts per 5 minutes", (Metric.RETRY_ATTEMPTS,), y_label="Attempts", width=8),
    MetricPanel(
        "Approvals, sweeps, poison messages, ledger conflicts, notifications",
        (
            Metric.PAYMENTS_APPROVED,
            Metric.PAYMENTS_RECONCILED,
            Metric.APPROVALS_RESENT,
            Metric.OWED_WORK_SETTLED,
            Metric.LEDGER_EVENTS_REDRIVEN,
            Metric.POISON_MESSAGES,
            Metric.LEDGER_CONFLICTS,
            Metric.NOTIFICATIONS_SENT,
            Metric.NOTIFICATIONS_SKIPPED,
        ),
        width=8,
    ),
    MetricPanel(
        "Books audit: findings per run",
        FINDING_METRICS,
        stat="Maximum",
        period=AUDIT_PERIOD,
        y_label="Findings",
    ),
    MetricPanel(
        "Books audit: findings, campaigns audited, complete runs",
        (Metric.BOOKS_FINDINGS, Metric.CAMPAIGNS_AUDITED, Metric.AUDITS_COMPLETED),
        stat="Maximum",
        period=AUDIT_PERIOD,
        y_label="Count",
    ),
)
"""The business graphs: every `contract.Metric` appears in exactly one (a test checks)."""

FAILED_PAYMENTS_QUERY = (
    f"fields @timestamp, paymentId, fundingId, service, message\n"
    f'| filter {EVENT_TYPE_LOG_KEY} = "{contract.EventType.PAYMENT_FAILED}"\n'
    "| sort @timestamp desc\n"
    "| dedup paymentId\n"
    "| limit 50"
)
"""Latest failed payments, one row each, from the functions that receive `payment.failed`."""
