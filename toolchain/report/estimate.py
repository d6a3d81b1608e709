"""Monthly cost estimate of a synthesized stack: quantities from the resources, dollars from `costs`.

Every quantity is read from the synthesized resources (counts, task sizes, subnet counts,
memory sizes, schedules, subscriptions, mappings, IAM grants). What cannot be read from the
program (how big a request is, how long a function runs, which events a payment publishes) is
an explicit `Assumptions` field, printed with the report.

Two columns: idle (the stack deployed, no traffic: always-on resources, schedules, pollers)
and at the stated load (`Load`: API requests and payments per month).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsblocks.testing import DeclaredResource, Synthesis

from toolchain.report import costs
from toolchain.report.prices import PriceTable
from toolchain.report.topology import (
    EVENT_RULE,
    FUNCTION,
    LOAD_BALANCERS,
    QUEUE,
    SCHEDULE,
    SERVICE,
    TABLE,
    TASK_DEFINITION,
    TOPIC,
    Topology,
    build_topology,
    filter_event_types,
)

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


@dataclass(frozen=True)
class Load:
    """The stated load: traffic per month."""

    api_requests: int
    payments: int

    def __post_init__(self) -> None:
        if self.api_requests < 0 or self.payments < 0:
            raise ValueError(
                f"load must be >= 0; got api_requests={self.api_requests}, payments={self.payments}"
            )


@dataclass(frozen=True)
class Assumptions:
    """What the estimate cannot read from the program. Every field is printed in the report.

    Attributes:
        hours: Hours in a month (AWS pricing pages use 730).
        api_response_kb: Bytes through the load balancer per API request, in KB (LCU data).
        api_log_bytes: Application log bytes the service writes per API request.
        flow_log_bytes_per_request: VPC flow-log bytes per API request (two flow records).
        access_log_bytes_per_request: Load-balancer access-log bytes per request (to S3).
        lambda_duration_ms: Average billed duration of a function invocation.
        lambda_log_bytes: Log bytes per invocation (START/END/REPORT lines plus one structured line).
        payment_events: Event types one payment publishes on its happy path.
        sqs_requests_per_message: SQS requests per message (send, receive, delete; no batching).
        sqs_pollers_per_mapping: Long-polling connections Lambda keeps per SQS event source mapping.
        nat_kb_per_api_request: Outbound bytes through NAT per API request (AWS APIs without a
            gateway endpoint, identity-provider keys), in KB.
        nat_kb_per_payment: Outbound bytes through NAT per payment (payment-gateway calls), in KB.
        table_kb_per_payment: Table storage a payment adds (payment item, ledger entries), in KB.
        deploys_per_month: Pipeline runs per month at load (idle: none).
        action_minutes_per_action: Minutes each pipeline action runs per deploy.
        build_minutes_per_run: Minutes each build project runs per deploy.
        image_gb_per_repository: Image storage kept per container repository, in GB.
    """

    hours: float = costs.HOURS_PER_MONTH
    api_response_kb: float = 4.0
    api_log_bytes: int = 600
    flow_log_bytes_per_request: int = 300
    access_log_bytes_per_request: int = 350
    lambda_duration_ms: float = 200.0
    lambda_log_bytes: int = 800
    payment_events: tuple[str, ...] = ("payment.requested", "payment.approved", "payment.captured")
    sqs_requests_per_message: int = 3
    sqs_pollers_per_mapping: int = 5
    nat_kb_per_api_request: float = 2.0
    nat_kb_per_payment: float = 10.0
    table_kb_per_payment: float = 3.0
    deploys_per_month: int = 20
    action_minutes_per_action: float = 2.0
    build_minutes_per_run: float = 8.0
    image_gb_per_repository: float = 0.5

    def describe(self) -> list[str]:
        """One sentence per assumption, for the report."""
        return [
            f"A month is {self.hours:g} hours; every always-on resource runs all of it.",
            "Free tiers are the always-free monthly allowances, applied as if the stack were alone "
            "in its account (first 3 dashboards, 10 alarm metrics, 1M SQS/SNS/Lambda requests, "
            "400,000 Lambda GB-s, 5 GB log ingestion, 25 GB DynamoDB storage, 100 pipeline/build minutes).",
            f"Each payment publishes its happy-path events: {', '.join(self.payment_events)}; an event "
            "goes to every topic with a subscription filtering on it (or, when none does, on the topic "
            "carrying most events of its family such as `payment.*`, or else to every topic with an "
            "unfiltered subscription), and to every matching subscription there.",
            "Each SQS message invokes the function mapped to its queue once (batch of one); a function "
            "allowed to invoke another (lambda:InvokeFunction) invokes it once per invocation.",
            f"Each SQS message costs {self.sqs_requests_per_message} requests; each event source "
            f"mapping keeps {self.sqs_pollers_per_mapping} 20-second long polls open even when idle.",
            f"Each function invocation lasts {self.lambda_duration_ms:g} ms, writes "
            f"{self.lambda_log_bytes} log bytes, and reads/writes one item (<= 1 KB) in each table its "
            "role may read/write; each API request reads one item, each payment request writes one item "
            "in each table the service may write.",
            f"Each API request moves {self.api_response_kb:g} KB through the load balancer, logs "
            f"{self.api_log_bytes} bytes (plus {self.flow_log_bytes_per_request} bytes of flow logs when "
            f"the VPC has flow logs, {self.access_log_bytes_per_request} bytes of access logs when the "
            "load balancer logs to S3) and is one new connection.",
            f"NAT data: {self.nat_kb_per_api_request:g} KB per API request and "
            f"{self.nat_kb_per_payment:g} KB per payment leave through NAT.",
            f"Table storage grows {self.table_kb_per_payment:g} KB per payment (first month shown).",
            f"At load the pipeline runs {self.deploys_per_month} times a month, each action "
            f"{self.action_minutes_per_action:g} min, each build {self.build_minutes_per_run:g} min; "
            "idle means no deploys.",
            f"Each container repository keeps {self.image_gb_per_repository:g} GB of images.",
            "The service runs its desired task count at idle and at load (no autoscaling is modelled).",
            "Not estimated: data transfer out to the internet, KMS API requests (data-key caching keeps "
            "them low), log storage, DynamoDB backups, custom metrics, X-Ray, Cognito (free below "
            "10,000 monthly active users).",
        ]


@dataclass(frozen=True)
class LineItem:
    """One billable item: quantity idle and at load, unit, unit price, monthly cost."""

    group: str
    item: str
    price_key: str
    unit: str
    unit_price: float
    free: float
    idle_quantity: float
    load_quantity: float
    basis: str
    source: str
    confirmed: bool

    @property
    def idle_cost(self) -> float:
        """Dollars per month with no traffic."""
        return costs.monthly_cost(self.idle_quantity, self.unit_price, self.free)

    @property
    def load_cost(self) -> float:
        """Dollars per month at the stated load."""
        return costs.monthly_cost(self.load_quantity, self.unit_price, self.free)


@dataclass
class CostEstimate:
    """Every line item of one stack plus what the estimate assumed."""

    stack: str
    region: str
    prices_compiled: str
    load: Load
    lines: list[LineItem]
    assumptions: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def idle_total(self) -> float:
        """Monthly dollars with no traffic."""
        return sum(line.idle_cost for line in self.lines)

    @property
    def load_total(self) -> float:
        """Monthly dollars at the stated load."""
        return sum(line.load_cost for line in self.lines)

    def dominant(self, column: str = "idle", share: float = 0.8) -> list[LineItem]:
        """The largest lines that together make up `share` of the column's total."""
        cost = (lambda li: li.idle_cost) if column == "idle" else (lambda li: li.load_cost)
        ranked = sorted((li for li in self.lines if cost(li) > 0), key=lambda li: -cost(li))
        total = sum(cost(li) for li in ranked)
        picked: list[LineItem] = []
        running = 0.0
        for line in ranked:
            if total and running >= share * total:
                break
            picked.append(line)
            running += cost(line)
        return picked

    def by_group(self, column: str = "idle") -> dict[str, float]:
        """Dollars per group (Network, Compute, …), largest first."""
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.group] = totals.get(line.group, 0.0) + (
                line.idle_cost if column == "idle" else line.load_cost
            )
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


# --- reading the resources -----------------------------------------------------------------


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _of_types(synthesis: Synthesis, *types: str) -> list[DeclaredResource]:
    return [r for r in synthesis.resources if r.type in types and r.custom]


def _source_bytes(resource: DeclaredResource) -> int:
    """Size of an uploaded object's local source file (0 when it has none on this machine)."""
    source = resource.inputs.get("source")
    path = (
        Path(str(source.get("fileAsset"))) if isinstance(source, dict) and source.get("fileAsset") else None
    )
    return path.stat().st_size if path is not None and path.is_file() else 0


def _names(resources: Iterable[DeclaredResource]) -> str:
    names = sorted(r.name for r in resources)
    if len(names) > 6:
        return ", ".join(names[:6]) + f" and {len(names) - 6} more"
    return ", ".join(names)


class _Lines:
    """Accumulates quantities per line item (several resources can add to one line)."""

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, group: str, item: str, price_key: str, idle: float, load: float, basis: str) -> None:
        entry = self.items.setdefault(
            item, {"group": group, "price_key": price_key, "idle": 0.0, "load": 0.0, "basis": []}
        )
        entry["idle"] += idle
        entry["load"] += load
        if basis and basis not in entry["basis"]:
            entry["basis"].append(basis)

    def same(self, group: str, item: str, price_key: str, quantity: float, basis: str) -> None:
        """A line whose quantity does not depend on traffic (always-on resources)."""
        self.add(group, item, price_key, quantity, quantity, basis)

    def lines(self) -> list[LineItem]:
        found: list[LineItem] = []
        for item, entry in self.items.items():
            if entry["idle"] == 0 and entry["load"] == 0:
                continue
            price = self.prices[entry["price_key"]]
            found.append(
                LineItem(
                    group=entry["group"],
                    item=item,
                    price_key=price.key,
                    unit=price.unit,
                    unit_price=price.usd,
                    free=price.free,
                    idle_quantity=entry["idle"],
                    load_quantity=entry["load"],
                    basis="; ".join(entry["basis"]),
                    source=price.source,
                    confirmed=price.confirmed,
                )
            )
        return found


def message_flow(
    topology: Topology, assumptions: Assumptions
) -> tuple[float, dict[str, float], dict[str, float]]:
    """Per payment: SNS publishes, SQS messages per queue URN, invocations per function URN."""
    subs_by_topic: dict[str, list[tuple[list[str], str]]] = {}
    for edge in topology.of_kind("subscription"):
        sub = topology.synthesis.by_urn.get(edge.via)
        types = filter_event_types(sub.inputs.get("filterPolicy")) if sub else []
        subs_by_topic.setdefault(edge.source, []).append((types, edge.target))
    publishes = 0.0
    messages: dict[str, float] = {}
    invocations: dict[str, float] = {}
    consumers: dict[str, list[str]] = {}
    for edge in topology.of_kind("mapping"):
        consumers.setdefault(edge.source, []).append(edge.target)
    for event in assumptions.payment_events:
        topics = [t for t, subs in subs_by_topic.items() if any(event in types for types, _ in subs)]
        if not topics:  # the topic carrying most events of its family (same "payment." prefix)
            family = event.split(".", 1)[0] + "."
            kin = {
                t: len({x for types, _ in subs for x in types if x.startswith(family)})
                for t, subs in subs_by_topic.items()
            }
            most = max(kin.values(), default=0)
            topics = [t for t, n in kin.items() if most and n == most]
        if not topics:
            topics = [t for t, subs in subs_by_topic.items() if any(not types for types, _ in subs)]
        for topic in topics:
            publishes += 1
            for types, target in subs_by_topic[topic]:
                if types and event not in types:
                    continue
                node = topology.nodes.get(target)
                if node is None:
                    continue
                if node.type == QUEUE:
                    messages[target] = messages.get(target, 0.0) + 1
                    for function in consumers.get(target, []):
                        invocations[function] = invocations.get(function, 0.0) + 1
                elif node.type == FUNCTION:
                    invocations[target] = invocations.get(target, 0.0) + 1
    return publishes, messages, _with_invokes(topology, invocations)


def _with_invokes(topology: Topology, invocations: dict[str, float], depth: int = 5) -> dict[str, float]:
    """Add the invocations functions cause by invoking other functions (one per call, `depth` hops)."""
    total = dict(invocations)
    frontier = dict(invocations)
    for _hop in range(depth):
        caused: dict[str, float] = {}
        for source, count in frontier.items():
            for edge in topology.out_edges(source, "invoke"):
                caused[edge.target] = caused.get(edge.target, 0.0) + count
        for urn, count in caused.items():
            total[urn] = total.get(urn, 0.0) + count
        if not caused:
            break
        frontier = caused
    return total


def scheduled_invocations(topology: Topology, hours: float) -> tuple[dict[str, float], list[str]]:
    """Function URN → runs per month from schedules, plus notes on expressions we could not read."""
    runs: dict[str, float] = {}
    notes: list[str] = []
    for edge in topology.of_kind("schedule"):
        rule = topology.nodes.get(edge.source)
        target = topology.nodes.get(edge.target)
        if rule is None or target is None or target.type != FUNCTION:
            continue
        expression = rule.inputs.get("scheduleExpression")
        if not isinstance(expression, str):
            continue
        try:
            runs[edge.target] = runs.get(edge.target, 0.0) + costs.schedule_runs_per_month(expression, hours)
        except ValueError as exc:
            notes.append(f"{rule.name}: {exc}; counted as hourly")
            runs[edge.target] = runs.get(edge.target, 0.0) + hours
    return runs, notes


def instance_price_key(instance_type: str) -> str:
    """The price-table key of an EC2 instance type's on-demand hour: t4g.nano → ec2_t4g_nano_hour."""
    return "ec2_" + instance_type.replace(".", "_").replace("-", "_") + "_hour"


def _launch_template_of(instance: DeclaredResource, synthesis: Synthesis) -> DeclaredResource | None:
    reference = (instance.inputs.get("launchTemplate") or {}).get("id")
    if not reference:
        return None
    return next((t for t in _of_types(synthesis, LAUNCH_TEMPLATE) if t.id == reference), None)


def _root_volume_gb(instance: DeclaredResource, template: DeclaredResource | None) -> float:
    """Root volume size: the instance's own root_block_device, else the template's first EBS mapping."""
    root = instance.inputs.get("rootBlockDevice") or {}
    if root.get("volumeSize"):
        return float(root["volumeSize"])
    for mapping in (template.inputs.get("blockDeviceMappings") or []) if template else []:
        ebs = mapping.get("ebs") if isinstance(mapping, dict) else None
        if isinstance(ebs, dict) and ebs.get("volumeSize"):
            return float(ebs["volumeSize"])
    return 8.0  # the size of Amazon Linux's AMI snapshot, used when nothing says otherwise


def _ec2_instances(synthesis: Synthesis, acc: _Lines, notes: list[str], hours: float) -> None:
    """Always-on EC2 instances (a NAT instance): instance hours by type and their gp3 root volumes."""
    for instance in _of_types(synthesis, INSTANCE):
        template = _launch_template_of(instance, synthesis)
        instance_type = instance.inputs.get("instanceType") or (
            template.inputs.get("instanceType") if template else None
        )
        if not isinstance(instance_type, str):
            notes.append(f"{instance.name}: instance type unknown; EC2 not estimated")
            continue
        key = instance_price_key(instance_type)
        if key not in acc.prices.prices:
            notes.append(
                f"{instance.name}: no price for {instance_type} ({key}) in {acc.prices.path.name}; "
                "add it to estimate this instance"
            )
            continue
        acc.same("Compute", f"EC2 {instance_type} hours", key, costs.always_on_hours(1, hours), instance.name)
        acc.same(
            "Storage",
            "EBS gp3 volumes",
            "ebs_gp3_gb_month",
            _root_volume_gb(instance, template),
            f"{instance.name}: root volume",
        )


def _memory(function: DeclaredResource) -> int:
    return _int(function.inputs.get("memorySize"), 128)


def _is_arm(resource: DeclaredResource) -> bool:
    archs = resource.inputs.get("architectures") or []
    return "arm64" in archs


def estimate(
    synthesis: Synthesis,
    load: Load,
    prices: PriceTable,
    assumptions: Assumptions | None = None,
    topology: Topology | None = None,
) -> CostEstimate:
    """Every billable line of the stack, idle and at `load`."""
    a = assumptions or Assumptions()
    topo = topology or build_topology(synthesis)
    acc = _Lines(prices)
    notes: list[str] = []
    hours = a.hours

    # --- network -----------------------------------------------------------------------
    nats = [
        r
        for r in _of_types(synthesis, "aws:ec2/natGateway:NatGateway")
        if r.inputs.get("connectivityType", "public") != "private"
    ]
    if nats:
        acc.same(
            "Network",
            "NAT gateway hours",
            "nat_gateway_hour",
            costs.always_on_hours(len(nats), hours),
            f"{len(nats)} NAT gateway(s): {_names(nats)}",
        )
        nat_gb = costs.gigabytes(load.api_requests, a.nat_kb_per_api_request * 1000) + costs.gigabytes(
            load.payments, a.nat_kb_per_payment * 1000
        )
        acc.add("Network", "NAT gateway data processed", "nat_gateway_gb", 0.0, nat_gb, "assumed NAT traffic")

    _ec2_instances(synthesis, acc, notes, hours)

    eips = _of_types(synthesis, "aws:ec2/eip:Eip")
    if eips:
        acc.same(
            "Network",
            "Public IPv4 addresses",
            "public_ipv4_hour",
            costs.always_on_hours(len(eips), hours),
            f"{len(eips)} Elastic IP(s): {_names(eips)}",
        )

    albs = [
        r
        for r in _of_types(synthesis, *LOAD_BALANCERS)
        if r.inputs.get("loadBalancerType", "application") == "application"
    ]
    for alb in albs:
        azs = len(alb.inputs.get("subnets") or alb.inputs.get("subnetMappings") or [])
        if not alb.inputs.get("internal") and azs:
            acc.same(
                "Network",
                "Public IPv4 addresses",
                "public_ipv4_hour",
                costs.always_on_hours(azs, hours),
                f"{alb.name}: one per AZ ({azs})",
            )
    if albs:
        acc.same(
            "Load balancing",
            "Application Load Balancer hours",
            "alb_hour",
            costs.always_on_hours(len(albs), hours),
            _names(albs),
        )
        lcus = costs.alb_lcus(load.api_requests, a.api_response_kb, hours)
        acc.add(
            "Load balancing",
            "ALB capacity units (LCU)",
            "alb_lcu_hour",
            0.0,
            lcus,
            "API requests as new connections and processed bytes",
        )

    endpoints = [
        r
        for r in _of_types(synthesis, "aws:ec2/vpcEndpoint:VpcEndpoint")
        if str(r.inputs.get("vpcEndpointType", "Gateway")).lower() == "interface"
    ]
    if endpoints:
        eni_count = sum(max(1, len(r.inputs.get("subnetIds") or [])) for r in endpoints)
        services = sorted({str(r.inputs.get("serviceName", "?")).rsplit(".", 1)[-1] for r in endpoints})
        acc.same(
            "Network",
            "Interface endpoint AZ-hours",
            "interface_endpoint_az_hour",
            costs.always_on_hours(eni_count, hours),
            f"{len(endpoints)} endpoint(s) x their subnets = {eni_count} ENIs ({', '.join(services)})",
        )

    # --- compute: Fargate ---------------------------------------------------------------
    resolver_tasks = {(r.state or {}).get("arn"): r for r in _of_types(synthesis, TASK_DEFINITION)}
    for service in _of_types(synthesis, SERVICE):
        task = resolver_tasks.get(service.inputs.get("taskDefinition"))
        if task is None:
            notes.append(f"{service.name}: task definition not found; Fargate not estimated")
            continue
        cpu = _int(task.inputs.get("cpu"), 256)
        memory = _int(task.inputs.get("memory"), 512)
        desired = _int(service.inputs.get("desiredCount"), 1)
        arch = str((task.inputs.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")).upper()
        strategy = [
            (str(s.get("capacityProvider")), _int(s.get("weight"), 0), _int(s.get("base"), 0))
            for s in service.inputs.get("capacityProviderStrategies") or []
            if isinstance(s, dict)
        ]
        for provider, tasks in costs.split_capacity(desired, strategy).items():
            if tasks <= 0:
                continue
            vcpu_h, gb_h = costs.fargate_hours(cpu, memory, tasks, hours)
            spot = provider.upper() == "FARGATE_SPOT"
            if spot:
                keys = ("fargate_spot_vcpu_hour", "fargate_spot_gb_hour")
                label = "Fargate Spot"
            elif arch == "ARM64":
                keys = ("fargate_arm_vcpu_hour", "fargate_arm_gb_hour")
                label = "Fargate ARM"
            else:
                keys = ("fargate_vcpu_hour", "fargate_gb_hour")
                label = "Fargate"
            basis = f"{service.name}: {tasks:g} task(s) x {cpu / 1024:g} vCPU / {memory / 1024:g} GB"
            acc.add("Compute", f"{label} vCPU-hours", keys[0], vcpu_h, vcpu_h, basis)
            acc.add("Compute", f"{label} GB-hours", keys[1], gb_h, gb_h, basis)
        if service.inputs.get("networkConfiguration", {}).get("assignPublicIp"):
            acc.same(
                "Network",
                "Public IPv4 addresses",
                "public_ipv4_hour",
                costs.always_on_hours(desired, hours),
                f"{service.name}: public IP per task",
            )

    # --- security -----------------------------------------------------------------------
    keys_ = _of_types(synthesis, "aws:kms/key:Key")
    if keys_:
        acc.add(
            "Security", "KMS customer managed keys", "kms_key_month", len(keys_), len(keys_), _names(keys_)
        )
    acls = _of_types(synthesis, "aws:wafv2/webAcl:WebAcl")
    if acls:
        rules = sum(len(r.inputs.get("rules") or []) for r in acls)
        acc.add("Security", "WAF web ACLs", "waf_web_acl_month", len(acls), len(acls), _names(acls))
        acc.add(
            "Security", "WAF rules", "waf_rule_month", rules, rules, f"{rules} rule(s) in {len(acls)} ACL(s)"
        )
        acc.add(
            "Security",
            "WAF requests",
            "waf_requests_million",
            0.0,
            costs.per_million(load.api_requests) * len(acls),
            "every API request inspected",
        )
    secrets = _of_types(synthesis, "aws:secretsmanager/secret:Secret")
    if secrets:
        acc.add(
            "Security",
            "Secrets Manager secrets",
            "secretsmanager_secret_month",
            len(secrets),
            len(secrets),
            _names(secrets),
        )
    advanced = [
        r for r in _of_types(synthesis, "aws:ssm/parameter:Parameter") if r.inputs.get("tier") == "Advanced"
    ]
    if advanced:
        acc.add(
            "Security",
            "SSM advanced parameters",
            "ssm_advanced_parameter_month",
            len(advanced),
            len(advanced),
            _names(advanced),
        )

    # --- monitoring ---------------------------------------------------------------------
    dashboards = _of_types(synthesis, "aws:cloudwatch/dashboard:Dashboard")
    if dashboards:
        acc.add(
            "Monitoring",
            "CloudWatch dashboards",
            "cloudwatch_dashboard_month",
            len(dashboards),
            len(dashboards),
            _names(dashboards),
        )
    standard, high_res = 0, 0
    for alarm in _of_types(synthesis, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        queries = alarm.inputs.get("metricQueries") or []
        metrics = sum(1 for q in queries if isinstance(q, dict) and q.get("metric")) or 1
        period = _int(alarm.inputs.get("period"), 60)
        for q in queries:
            if isinstance(q, dict) and isinstance(q.get("metric"), dict):
                period = min(period, _int(q["metric"].get("period"), 60))
        if period < 60:
            high_res += metrics
        else:
            standard += metrics
    if standard:
        acc.add(
            "Monitoring",
            "CloudWatch alarm metrics (standard)",
            "cloudwatch_alarm_metric_month",
            standard,
            standard,
            "one per metric each alarm evaluates",
        )
    if high_res:
        acc.add(
            "Monitoring",
            "CloudWatch alarm metrics (high resolution)",
            "cloudwatch_high_res_alarm_metric_month",
            high_res,
            high_res,
            "period under 60 s",
        )
    composites = _of_types(synthesis, "aws:cloudwatch/compositeAlarm:CompositeAlarm")
    if composites:
        acc.add(
            "Monitoring",
            "CloudWatch composite alarms",
            "cloudwatch_composite_alarm_month",
            len(composites),
            len(composites),
            _names(composites),
        )

    # --- messaging, functions, tables ---------------------------------------------------
    publishes, messages, event_invocations = message_flow(topo, a)
    scheduled, schedule_notes = scheduled_invocations(topo, hours)
    notes.extend(schedule_notes)
    mappings = [e for e in topo.of_kind("mapping") if topo.nodes[e.source].type == QUEUE]
    topics = _of_types(synthesis, TOPIC)
    if topics:
        acc.add(
            "Messaging",
            "SNS publishes",
            "sns_publishes_million",
            0.0,
            costs.per_million(publishes * load.payments),
            f"{publishes:g} publish(es) per payment on {len(topics)} topic(s)",
        )
    queues = _of_types(synthesis, QUEUE)
    if queues:
        polls = costs.sqs_idle_polls(len(mappings), a.sqs_pollers_per_mapping, hours=hours)
        per_payment = sum(messages.values())
        sent = per_payment * load.payments * a.sqs_requests_per_message
        acc.add(
            "Messaging",
            "SQS requests",
            "sqs_requests_million",
            costs.per_million(polls),
            costs.per_million(polls + sent),
            f"{len(mappings)} mapping(s) polling; {per_payment:g} message(s) per payment",
        )

    functions = _of_types(synthesis, FUNCTION)
    idle_invocations: dict[str, float] = {urn: runs for urn, runs in scheduled.items()}
    load_invocations: dict[str, float] = dict(idle_invocations)
    for urn, per_payment in event_invocations.items():
        load_invocations[urn] = load_invocations.get(urn, 0.0) + per_payment * load.payments
    if functions:
        idle_requests = sum(idle_invocations.values())
        load_requests = sum(load_invocations.values())
        acc.add(
            "Functions",
            "Lambda requests",
            "lambda_requests_million",
            costs.per_million(idle_requests),
            costs.per_million(load_requests),
            f"{len(functions)} function(s); schedules {idle_requests:,.0f}/month idle",
        )
        for arm in (False, True):
            group = [f for f in functions if _is_arm(f) == arm]
            if not group:
                continue
            idle_gbs = sum(
                costs.lambda_gb_seconds(idle_invocations.get(f.urn, 0.0), _memory(f), a.lambda_duration_ms)
                for f in group
            )
            load_gbs = sum(
                costs.lambda_gb_seconds(load_invocations.get(f.urn, 0.0), _memory(f), a.lambda_duration_ms)
                for f in group
            )
            memories = sorted({_memory(f) for f in group})
            acc.add(
                "Functions",
                f"Lambda compute ({'arm64' if arm else 'x86'})",
                "lambda_arm_gb_second" if arm else "lambda_gb_second",
                idle_gbs,
                load_gbs,
                f"{len(group)} function(s), memory {'/'.join(map(str, memories))} MB",
            )

    tables = _of_types(synthesis, TABLE)
    if tables:
        reads_idle, writes_idle, reads_load, writes_load = 0.0, 0.0, 0.0, 0.0
        for edge in topo.of_kind("grant"):
            target = topo.nodes.get(edge.target)
            runner = topo.nodes.get(edge.source)
            if target is None or runner is None or target.type != TABLE:
                continue
            reads = "read" in edge.label
            writes = "write" in edge.label
            if runner.type == FUNCTION:
                idle_n = idle_invocations.get(runner.urn, 0.0)
                load_n = load_invocations.get(runner.urn, 0.0)
                reads_idle += idle_n if reads else 0.0
                writes_idle += idle_n if writes else 0.0
                reads_load += load_n if reads else 0.0
                writes_load += load_n if writes else 0.0
            elif runner.type == SERVICE:
                writes_load += load.payments if writes else 0.0
        service_reads = any(
            e.label.startswith("read") and topo.nodes[e.source].type == SERVICE
            for e in topo.of_kind("grant")
            if e.source in topo.nodes and e.target in topo.nodes and topo.nodes[e.target].type == TABLE
        )
        if service_reads:
            reads_load += load.api_requests
        on_demand = [t for t in tables if t.inputs.get("billingMode", "PROVISIONED") == "PAY_PER_REQUEST"]
        provisioned = [t for t in tables if t not in on_demand]
        if on_demand:
            acc.add(
                "Data",
                "DynamoDB write request units",
                "dynamodb_write_million",
                costs.per_million(writes_idle),
                costs.per_million(writes_load),
                "from IAM grants x invocations and payment requests",
            )
            acc.add(
                "Data",
                "DynamoDB read request units",
                "dynamodb_read_million",
                costs.per_million(reads_idle),
                costs.per_million(reads_load),
                "from IAM grants x invocations and API requests",
            )
        for table in provisioned:
            wcu = _int(table.inputs.get("writeCapacity"), 0)
            rcu = _int(table.inputs.get("readCapacity"), 0)
            acc.same(
                "Data",
                "DynamoDB provisioned WCU-hours",
                "dynamodb_wcu_hour",
                costs.always_on_hours(wcu, hours),
                f"{table.name}: {wcu} WCU",
            )
            acc.same(
                "Data",
                "DynamoDB provisioned RCU-hours",
                "dynamodb_rcu_hour",
                costs.always_on_hours(rcu, hours),
                f"{table.name}: {rcu} RCU",
            )
        acc.add(
            "Data",
            "DynamoDB storage",
            "dynamodb_storage_gb_month",
            0.0,
            costs.gigabytes(load.payments, a.table_kb_per_payment * 1000),
            f"{len(tables)} table(s)",
        )

    # --- logs ---------------------------------------------------------------------------
    ecs_services = _of_types(synthesis, SERVICE)
    flow_logs = [
        r
        for r in _of_types(synthesis, "aws:ec2/flowLog:FlowLog")
        if r.inputs.get("logDestinationType", "cloud-watch-logs") == "cloud-watch-logs"
    ]
    idle_log = costs.gigabytes(sum(idle_invocations.values()), a.lambda_log_bytes)
    load_log = costs.gigabytes(sum(load_invocations.values()), a.lambda_log_bytes)
    if ecs_services:
        load_log += costs.gigabytes(load.api_requests, a.api_log_bytes)
    if flow_logs:
        load_log += costs.gigabytes(load.api_requests, a.flow_log_bytes_per_request)
    if _of_types(synthesis, "aws:cloudwatch/logGroup:LogGroup"):
        acc.add(
            "Monitoring",
            "CloudWatch Logs ingestion",
            "cloudwatch_logs_ingest_gb",
            idle_log,
            load_log,
            "function, service and flow logs",
        )

    # --- storage ------------------------------------------------------------------------
    logged = [
        alb
        for alb in albs
        if isinstance(alb.inputs.get("accessLogs"), dict) and alb.inputs["accessLogs"].get("enabled", True)
    ]
    if logged:
        gb = costs.gigabytes(load.api_requests, a.access_log_bytes_per_request)
        acc.add(
            "Storage", "S3 storage for logs", "s3_standard_gb_month", 0.0, gb, "load balancer access logs"
        )
        puts = sum(len(alb.inputs.get("subnets") or []) for alb in logged) * 12 * hours / 1000
        acc.add(
            "Storage",
            "S3 PUT requests for logs",
            "s3_put_thousand",
            0.0,
            puts,
            "one log file per AZ node every 5 minutes",
        )
    packages = _of_types(synthesis, "aws:s3/bucketObjectv2:BucketObjectv2")
    if packages:
        # Each upload plus the copy AWS Signer makes of it (signing itself is free); an old
        # version lingers a week at most after a change (the lifecycle's noncurrent expiry).
        gb = 2 * sum(_source_bytes(package) for package in packages) / 1024**3
        acc.add("Storage", "S3 storage for code packages", "s3_standard_gb_month", gb, gb, _names(packages))
    repositories = _of_types(synthesis, "aws:ecr/repository:Repository")
    if repositories:
        gb = len(repositories) * a.image_gb_per_repository
        acc.add("Storage", "ECR image storage", "ecr_storage_gb_month", gb, gb, _names(repositories))

    # --- delivery -----------------------------------------------------------------------
    for pipeline in _of_types(synthesis, "aws:codepipeline/pipeline:Pipeline"):
        actions = sum(
            len(stage.get("actions") or [])
            for stage in pipeline.inputs.get("stages") or []
            if isinstance(stage, dict)
        )
        if str(pipeline.inputs.get("pipelineType", "V1")).upper() == "V2":
            minutes = a.deploys_per_month * actions * a.action_minutes_per_action
            acc.add(
                "Delivery",
                "CodePipeline V2 action minutes",
                "codepipeline_v2_action_minute",
                0.0,
                minutes,
                f"{pipeline.name}: {actions} action(s)",
            )
        else:
            acc.add(
                "Delivery",
                "CodePipeline V1 active pipelines",
                "codepipeline_v1_pipeline_month",
                1,
                1,
                pipeline.name,
            )
    for project in _of_types(synthesis, "aws:codebuild/project:Project"):
        env = project.inputs.get("environment") or {}
        compute = str(env.get("computeType", "BUILD_GENERAL1_SMALL")).upper()
        arm = "ARM" in str(env.get("type", "")).upper()
        size = "large" if "LARGE" in compute else ("medium" if "MEDIUM" in compute else "small")
        key = f"codebuild_{'arm_' if arm else ''}{size}_minute"
        if key not in prices.prices:
            key = "codebuild_arm_large_minute" if arm else "codebuild_large_minute"
        acc.add(
            "Delivery",
            f"CodeBuild minutes ({'ARM ' if arm else ''}{size})",
            key,
            0.0,
            a.deploys_per_month * a.build_minutes_per_run,
            project.name,
        )

    lines = sorted(acc.lines(), key=lambda li: (-li.idle_cost, -li.load_cost, li.item))
    return CostEstimate(
        stack=synthesis.stack,
        region=prices.region,
        prices_compiled=prices.compiled,
        load=load,
        lines=lines,
        assumptions=a.describe(),
        notes=notes,
    )


__all__ = [
    "EVENT_RULE",
    "SCHEDULE",
    "Assumptions",
    "CostEstimate",
    "LineItem",
    "Load",
    "estimate",
    "message_flow",
]
