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

import pulumi
from awsblocks.functions.scheduled_function import ScheduledFunction
from awsblocks.messaging.queue import Queue
from awsblocks.observability.alarms import AlarmThresholds
from awsblocks.observability.business import CustomMetrics, LogPanel
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

from dashboards.alarms import books_alarms
from dashboards.business import AUDITOR, BUSINESS_PANELS, FAILED_PAYMENTS_QUERY, LEDGER
from infra.api_service import API_NAME
from infra.config import PROJECT, StackConfig
from infra.payment_chain import PaymentChain
from lambdas.shared import contract
from lambdas.specs import catalog

SERVICE_NAME_VARIABLE = "POWERTOOLS_SERVICE_NAME"
"""The environment variable whose value Powertools writes into the `service` dimension."""


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


def _service(chain: PaymentChain, function: str) -> pulumi.Input[str]:
    return chain.environments[function][SERVICE_NAME_VARIABLE]


def watched_metrics(chain: PaymentChain) -> tuple[WatchedMetric[pulumi.Input[str]], ...]:
    """The product's alarms on its own metrics (`dashboards.alarms`), on this stack's emitters."""
    return books_alarms(_service(chain, AUDITOR), _service(chain, LEDGER))


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
