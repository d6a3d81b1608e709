"""Observability layer: the stack's dashboards and alarms, from what the other layers declared.

Nothing here lists a resource by hand: the watched queues, dead-letter queues, functions and
tables are every one the payment chain declared (`PaymentChain`), the load balancer and ECS
service are the API's (`WebService`), and the business metrics are `contract.Metric` in
`contract.METRICS_NAMESPACE`, emitted with the dimension `contract.METRICS_SERVICE_DIMENSION` =
each function's `POWERTOOLS_SERVICE_NAME` as this stack sets it. A queue or function added to
the chain appears on the operations dashboard and gets its alarms without an edit here.

The books auditor's findings and the ledger's conflicts are alarmed on their own values
(`WatchedMetric`), and the auditor's completed runs on their absence: books that are no longer
being checked alarm too. The findings alarm on their total (BooksFindings), one alarm whatever the
kind: seven per-kind alarms would cost $0.60 a month more and put the dev stack above its $80
idle target; the per-kind counts are on the business dashboard and each finding is a log line.

Every alarm notifies the `ops-alerts` topic, whose email subscription (`alertEmail`) the payment
chain creates. The DLQ-not-empty alarms are the ones `awsblocks.messaging.queue.Queue` (and
`ScheduledFunction`'s DLQ) already create; this layer does not add a second one.
"""

from __future__ import annotations

import re

import pulumi
from awsblocks.functions.scheduled_function import ScheduledFunction
from awsblocks.messaging.queue import Queue
from awsblocks.observability.alarms import AlarmThresholds
from awsblocks.observability.business import CustomMetrics, LogPanel, MetricPanel
from awsblocks.observability.observability import Observability, ObservabilityArgs
from awsblocks.observability.refs import (
    Watched,
    WatchedFunction,
    WatchedLoadBalancer,
    WatchedMetric,
    WatchedQueue,
    WatchedService,
    WatchedTable,
)
from awsblocks.web.web_service import WebService

from infra.api_service import API_NAME
from infra.config import PROJECT, StackConfig
from infra.payment_chain import PaymentChain, schedule_of
from lambdas.shared import books, contract
from lambdas.shared.books import FindingKind
from lambdas.shared.contract import Metric
from lambdas.specs import catalog

SERVICE_NAME_VARIABLE = "POWERTOOLS_SERVICE_NAME"
"""The environment variable whose value Powertools writes into the `service` dimension."""
EVENT_TYPE_LOG_KEY = "eventType"
"""The log key `lambdas.shared.telemetry.correlated` writes each event's type under."""

AUDITOR = "books_auditor"
"""The function that audits the books (lambdas/books_auditor.py)."""
LEDGER = "ledger_recorder"
"""The function that emits LedgerConflicts."""
FINDING_METRICS: tuple[Metric, ...] = tuple(books.METRIC_OF_KIND.values())
AUDIT_PERIOD = books.rate_seconds(schedule_of(catalog.spec_of(AUDITOR)))
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


def alarm_thresholds(cfg: StackConfig) -> AlarmThresholds:
    """The stack config's thresholds."""
    return AlarmThresholds(
        queue_age_seconds=cfg.queue_age_alarm_seconds,
        function_errors=cfg.function_errors_threshold,
        function_throttles=cfg.function_throttles_threshold,
        table_throttles=cfg.table_throttles_threshold,
        alb_5xx_rate_percent=cfg.alb5xx_rate_percent,
        task_shortfall_minutes=cfg.task_shortfall_minutes,
    )


def _queue(label: str, queue: Queue) -> WatchedQueue[pulumi.Input[str]]:
    return WatchedQueue(
        label,
        queue.name,
        queue.dead_letter.name if queue.dead_letter is not None else None,
        # awsblocks.messaging.queue.Queue alarms on its DLQ's depth itself.
        dead_letter_alarm_exists=queue.dead_letter is not None,
    )


def watched_resources(chain: PaymentChain, api: WebService) -> Watched[pulumi.Input[str]]:
    """Every queue, DLQ, function and table of the chain, and the API's load balancer and service."""
    queues = [_queue(label, queue) for label, queue in chain.queues.items()]
    for name, function in chain.functions.items():
        if isinstance(function, ScheduledFunction):
            # The schedule's DLQ: its own component already alarms when it is not empty.
            queues.append(
                WatchedQueue(
                    f"{name.replace('_', '-')}-schedule-dlq",
                    function.dead_letter.name,
                    is_dead_letter=True,
                    dead_letter_alarm_exists=True,
                )
            )
    return Watched(
        queues=tuple(queues),
        functions=tuple(
            WatchedFunction(name.replace("_", "-"), fn.function_name) for name, fn in chain.functions.items()
        ),
        tables=tuple(WatchedTable(name, table.name) for name, table in chain.tables.items()),
        load_balancers=(WatchedLoadBalancer(API_NAME, api.alb_arn_suffix, api.target_group_arn_suffix),),
        services=(WatchedService(API_NAME, api.cluster_name, api.service_name),),
        metrics=watched_metrics(chain),
    )


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _service(chain: PaymentChain, function: str) -> pulumi.Input[str]:
    return chain.environments[function][SERVICE_NAME_VARIABLE]


def watched_metrics(chain: PaymentChain) -> tuple[WatchedMetric[pulumi.Input[str]], ...]:
    """Alarms on the books findings (their total), on the auditor falling silent, on ledger conflicts."""
    auditor = {contract.METRICS_SERVICE_DIMENSION: _service(chain, AUDITOR)}
    kinds = "; ".join(
        f"{metric.value}: {FINDING_ADVICE[kind]}" for kind, metric in books.METRIC_OF_KIND.items()
    )
    found: list[WatchedMetric[pulumi.Input[str]]] = [
        WatchedMetric(
            _kebab(Metric.BOOKS_FINDINGS.value),
            contract.METRICS_NAMESPACE,
            Metric.BOOKS_FINDINGS.value,
            auditor,
            "The books auditor found something wrong (DESIGN section 3). The business dashboard's "
            "'Books audit: findings per run' says which kind, the books_auditor log group has one line "
            "per finding with the ids, `make audit` against the stack's tables prints every balance "
            f"sheet. Kinds: {kinds}.",
            period=AUDIT_PERIOD,
            evaluation_periods=2,  # a run near a period boundary is still seen
        )
    ]
    found.append(
        WatchedMetric(
            _kebab(Metric.AUDITS_COMPLETED.value),
            contract.METRICS_NAMESPACE,
            Metric.AUDITS_COMPLETED.value,
            auditor,
            f"No complete books audit in {AUDIT_SILENT_SECONDS // 60} minutes: the books are not being "
            "checked. Read the books_auditor's log group (errors, an incomplete run out of time) and "
            "its schedule's dead-letter queue.",
            threshold=1,
            below=True,
            statistic="Sum",
            period=AUDIT_SILENT_SECONDS,
            missing_is_breaching=True,
        )
    )
    found.append(
        WatchedMetric(
            _kebab(Metric.LEDGER_CONFLICTS.value),
            contract.METRICS_NAMESPACE,
            Metric.LEDGER_CONFLICTS.value,
            {contract.METRICS_SERVICE_DIMENSION: _service(chain, LEDGER)},
            "A different event reused a ledger row's key; the ledger kept the first row (it is "
            "append-only). Read the ledger_recorder's log group for both events.",
            statistic="Sum",
            period=300,
        )
    )
    return tuple(found)


def business_metrics(chain: PaymentChain) -> CustomMetrics[pulumi.Input[str]]:
    """The EMF metrics, filtered to the service names this stack gives its functions."""
    emitters = tuple(
        chain.environments[name][SERVICE_NAME_VARIABLE]
        for name in chain.functions
        if SERVICE_NAME_VARIABLE in chain.environments.get(name, {})
    )
    return CustomMetrics(
        namespace=contract.METRICS_NAMESPACE,
        dimension=contract.METRICS_SERVICE_DIMENSION,
        panels=BUSINESS_PANELS,
        emitters=emitters,
    )


def failed_payment_loggers() -> list[str]:
    """Functions that receive `payment.failed` events and log each one with its type (from their specs)."""
    return sorted(catalog.consumers_of(contract.EventType.PAYMENT_FAILED))


def failed_payments_panel(chain: PaymentChain) -> LogPanel[pulumi.Input[str]]:
    """A Logs Insights table of the latest failed payments, over those functions' log groups."""
    return LogPanel(
        "Latest failed payments",
        tuple(chain.functions[name].log_group_name for name in failed_payment_loggers()),
        FAILED_PAYMENTS_QUERY,
    )


def declare_observability(
    cfg: StackConfig, chain: PaymentChain, api: WebService, *, opts: pulumi.ResourceOptions
) -> Observability:
    """The operations and business dashboards and the alarms, notifying ops-alerts."""
    observability = Observability(
        "observability",
        ObservabilityArgs(
            name_prefix=cfg.name_prefix,
            alarm_topic_arn=chain.alerts_topic.arn,
            dashboard_name_prefix=f"{PROJECT}-{cfg.stack}",
            watched=watched_resources(chain, api),
            thresholds=alarm_thresholds(cfg),
            custom_metrics=business_metrics(chain),
            log_panels=(failed_payments_panel(chain),),
        ),
        opts=opts,
    )
    pulumi.export("operationsDashboardName", observability.operations_dashboard_name)
    if observability.business_dashboard_name is not None:
        pulumi.export("businessDashboardName", observability.business_dashboard_name)
    return observability
