"""Dashboards and alarms for a set of AWS resources, from the pure definitions in `dashboards/`.

`Observability` takes generic references (queue and DLQ names, function names, table names,
ALB and target-group ARN suffixes, ECS cluster and service names, a custom metric namespace and
its metric names, log groups) and creates:

- an operations dashboard `<prefix>-operations` (`awsblocks.observability.operations`);
- a business dashboard `<prefix>-business` when custom metrics or log panels are given
  (`awsblocks.observability.business`);
- the alarms of `awsblocks.observability.alarms.alarms_for`, each notifying `alarm_topic_arn` on alarm and on
  recovery: queue age, DLQ not empty (unless `dead_letter_alarm_exists` says the queue's own
  component already made one), function errors and throttles, table throttles, ALB 5xx rate,
  ECS running tasks below desired.

The dashboard bodies are `Output.all(<every name>).apply(json.dumps(<pure function>))`: nothing
is typed by hand, and the same functions are what tests call with plain strings.

Example (another team's own resources)::

    Observability("orders-obs", ObservabilityArgs(
        alarm_topic_arn=alerts.arn,
        dashboard_name_prefix="orders-prod",
        watched=Watched(
            queues=(WatchedQueue("shipping", shipping.name, shipping.dead_letter.name,
                                 dead_letter_alarm_exists=True),),
            functions=(WatchedFunction("shipper", shipper.function_name),),
            tables=(WatchedTable("shipments", table.name),),
        ),
        custom_metrics=CustomMetrics("Orders", "service", (MetricPanel("Orders", ("OrdersShipped",)),),
                                     emitters=("shipper",)),
    ))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs, account_facts
from awsblocks.observability.alarms import AlarmSpec, AlarmThresholds, MetricQuery, MetricStat, alarms_for
from awsblocks.observability.business import CustomMetrics, LogPanel, business_dashboard
from awsblocks.observability.operations import operations_dashboard
from awsblocks.observability.refs import Watched

_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,240}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_./#:-]{1,255}$")
_EMITTER = re.compile(r"^[A-Za-z0-9_./:@+=-]{1,255}$")


@dataclass
class ObservabilityArgs(ComponentArgs):
    """Arguments of `Observability`.

    Attributes:
        alarm_topic_arn: SNS topic every alarm notifies (on alarm and on recovery). Its policy
            must let CloudWatch publish (`TopicArgs(publisher_services=["cloudwatch"])`).
        dashboard_name_prefix: Dashboards are named `<prefix>-operations` and `<prefix>-business`
            (unique per account and region: include the stage). Letters, digits, `-`, `_`.
        watched: The resources on the operations dashboard and under alarms (`awsblocks.observability.refs`).
            At least one resource.
        thresholds: When the alarms fire. Default `AlarmThresholds()` (see its defaults).
        custom_metrics: Custom (e.g. EMF) metrics for the business dashboard. Default none.
        log_panels: Logs Insights tables for the business dashboard. Default none.
        alarms_enabled: Alarm actions on. False keeps the alarms (and their state on the
            console) without notifications, e.g. while load-testing. Default True.
        tags: Tags for every alarm (the component adds `component`).
    """

    alarm_topic_arn: pulumi.Input[str]
    dashboard_name_prefix: str
    watched: Watched[pulumi.Input[str]]
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    custom_metrics: CustomMetrics[pulumi.Input[str]] | None = None
    log_panels: Sequence[LogPanel[pulumi.Input[str]]] = ()
    alarms_enabled: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_observability_args(name: str, args: ObservabilityArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""
    where = f"Observability {name}"
    if not isinstance(args.watched, Watched) or args.watched.empty:
        raise ValueError(
            f"{where}: watched={args.watched!r}; allowed: a Watched with at least one "
            "queue, function, table, load balancer or service"
        )
    longest = f"{args.dashboard_name_prefix}-operations"
    if not _DASHBOARD_NAME.match(args.dashboard_name_prefix) or len(longest) > 255:
        raise ValueError(
            f"{where}: dashboard_name_prefix={args.dashboard_name_prefix!r}; allowed: 1 to 240 letters, "
            "digits, '-' or '_'"
        )
    if not isinstance(args.thresholds, AlarmThresholds):
        raise ValueError(f"{where}: thresholds={args.thresholds!r}; allowed: an AlarmThresholds")
    metrics = args.custom_metrics
    if metrics is not None:
        if not _NAMESPACE.match(metrics.namespace) or metrics.namespace.startswith("AWS/"):
            raise ValueError(
                f"{where}: custom_metrics.namespace={metrics.namespace!r}; allowed: a custom namespace "
                "(letters, digits, . - _ / # :, not starting with AWS/)"
            )
        for emitter in metrics.emitters:
            if isinstance(emitter, str) and not _EMITTER.match(emitter):
                raise ValueError(
                    f"{where}: custom_metrics.emitters has {emitter!r}; "
                    "allowed: letters, digits and _ . / : @ + = -"
                )
    for panel in args.log_panels:
        if not panel.log_group_names:
            raise ValueError(f"{where}: log panel {panel.title!r} has no log groups; allowed: one or more")


def _resolve(values: Sequence[pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    return pulumi.Output.all(*values).apply(lambda resolved: [str(v) for v in resolved])


class Observability(Component):
    """An operations dashboard, an optional business dashboard and the alarms. See the module docstring.

    Outputs: `operations_dashboard_name`, `business_dashboard_name` (None without custom metrics
    or log panels), `alarm_arns` (alarm key → ARN), `alarm_keys` (the keys, for tests and docs).
    """

    operations_dashboard_name: pulumi.Output[str]
    business_dashboard_name: pulumi.Output[str] | None
    alarm_arns: dict[str, pulumi.Output[str]]
    alarm_keys: list[str]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_observability_args(name, args)
        super().__init__("Observability", name, args.tags, opts, name_prefix=args.name_prefix)
        region = account_facts(self).region
        watched = args.watched
        thresholds = args.thresholds

        operations_body = _resolve(watched.values()).apply(
            lambda values: json.dumps(
                operations_dashboard(watched.with_values(values), region, thresholds), sort_keys=True
            )
        )
        operations = aws.cloudwatch.Dashboard(
            f"{name}-operations",
            dashboard_name=f"{args.dashboard_name_prefix}-operations",
            dashboard_body=operations_body,
            opts=self.child_opts(),
        )
        self.operations_dashboard_name = operations.dashboard_name

        self.business_dashboard_name = None
        if args.custom_metrics is not None or args.log_panels:
            business = aws.cloudwatch.Dashboard(
                f"{name}-business",
                dashboard_name=f"{args.dashboard_name_prefix}-business",
                dashboard_body=self._business_body(region, args.custom_metrics, list(args.log_panels)),
                opts=self.child_opts(),
            )
            self.business_dashboard_name = business.dashboard_name

        specs = alarms_for(watched, thresholds)
        self.alarm_keys = [spec.key for spec in specs]
        self.alarm_arns = {
            spec.key: self._alarm(name, spec, args.alarm_topic_arn, args.alarms_enabled).arn for spec in specs
        }
        self.register_outputs(
            {
                "operations_dashboard_name": self.operations_dashboard_name,
                "business_dashboard_name": self.business_dashboard_name,
                "alarm_arns": self.alarm_arns,
                "alarm_keys": self.alarm_keys,
            }
        )

    @staticmethod
    def _business_body(
        region: str,
        metrics: CustomMetrics[pulumi.Input[str]] | None,
        logs: list[LogPanel[pulumi.Input[str]]],
    ) -> pulumi.Output[str]:
        """Resolve emitters and log group names, then render the body with plain strings."""
        emitters = list(metrics.emitters) if metrics is not None else []
        groups = [list(panel.log_group_names) for panel in logs]
        flat = [*emitters, *(g for group in groups for g in group)]

        def render(values: list[str]) -> str:
            resolved_metrics = (
                CustomMetrics(
                    metrics.namespace, metrics.dimension, metrics.panels, tuple(values[: len(emitters)])
                )
                if metrics is not None
                else None
            )
            rest = values[len(emitters) :]
            resolved_logs: list[LogPanel[str]] = []
            for panel, group in zip(logs, groups, strict=True):
                resolved_logs.append(
                    LogPanel(panel.title, tuple(rest[: len(group)]), panel.query, panel.height)
                )
                rest = rest[len(group) :]
            return json.dumps(business_dashboard(region, resolved_metrics, resolved_logs), sort_keys=True)

        return _resolve(flat).apply(render)

    def _alarm(
        self, name: str, spec: AlarmSpec[pulumi.Input[str]], topic_arn: pulumi.Input[str], enabled: bool
    ) -> aws.cloudwatch.MetricAlarm:
        """One `MetricAlarm` from its pure definition, notifying the topic on alarm and recovery."""
        single: dict[str, Any] = {}
        if spec.metric is not None:
            single = {
                "namespace": spec.metric.namespace,
                "metric_name": spec.metric.metric_name,
                "dimensions": dict(spec.metric.dimensions),
                "statistic": _statistic(spec.metric),
                "extended_statistic": _extended(spec.metric),
                "period": spec.metric.period,
            }
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}",
            alarm_description=spec.description,
            comparison_operator=spec.comparison,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm,
            treat_missing_data=spec.treat_missing_data,
            metric_queries=[_query(q) for q in spec.queries] or None,
            actions_enabled=enabled,
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=self.named_tags(f"{name}-{spec.key}"),
            opts=self.child_opts(),
            **single,
        )


def _statistic(stat: MetricStat[pulumi.Input[str]]) -> str | None:
    return None if stat.stat.startswith("p") else stat.stat


def _extended(stat: MetricStat[pulumi.Input[str]]) -> str | None:
    return stat.stat if stat.stat.startswith("p") else None


def _query(query: MetricQuery[pulumi.Input[str]]) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    metric = query.metric
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query.id,
        expression=query.expression,
        label=query.label or None,
        return_data=query.return_data,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            dimensions=dict(metric.dimensions),
            stat=metric.stat,
            period=metric.period,
        )
        if metric is not None
        else None,
    )
