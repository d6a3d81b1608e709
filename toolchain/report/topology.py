"""The system as a graph, read from the synthesized resources: what talks to what.

Nodes are the resources a reviewer reasons about (topics, queues, functions, tables, the
container service, schedules, load balancers); edges come from the resources that connect
them (subscriptions, event source mappings, redrive policies, schedule targets, IAM grants).
References are resolved through the ids, ARNs, URLs and names the mocks give each resource
(`DeclaredResource.state`), so nothing here names a resource of this product.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from awsblocks.testing import DeclaredResource, Synthesis

TOPIC = "aws:sns/topic:Topic"
QUEUE = "aws:sqs/queue:Queue"
FUNCTION = "aws:lambda/function:Function"
TABLE = "aws:dynamodb/table:Table"
SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
REDRIVE = "aws:sqs/redrivePolicy:RedrivePolicy"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")

NODE_TYPES = (TOPIC, QUEUE, FUNCTION, TABLE, SERVICE, EVENT_RULE, SCHEDULE, *LOAD_BALANCERS)
"""Resource types drawn as nodes."""

READ_ACTIONS = ("get", "query", "scan", "batchget", "describe", "conditioncheck", "list")
WRITE_ACTIONS = ("put", "update", "delete", "batchwrite", "transactwrite")


@dataclass(frozen=True)
class Edge:
    """A directed connection between two node URNs, with the resource that makes it."""

    source: str
    target: str
    kind: str
    label: str = ""
    via: str = ""


@dataclass
class Topology:
    """Nodes (URN → resource) and edges of one synthesized stack."""

    synthesis: Synthesis
    nodes: dict[str, DeclaredResource]
    edges: list[Edge] = field(default_factory=list)
    externals: dict[str, str] = field(default_factory=dict)
    """Endpoints outside the stack (email addresses, HTTPS URLs) by a synthetic key → label."""

    def of_kind(self, kind: str) -> list[Edge]:
        """Edges of one kind (subscription, mapping, redrive, schedule, grant, invoke, traffic)."""
        return [e for e in self.edges if e.kind == kind]

    def out_edges(self, urn: str, kind: str | None = None) -> list[Edge]:
        """Edges leaving a node."""
        return [e for e in self.edges if e.source == urn and (kind is None or e.kind == kind)]


def _json(value: Any) -> Any:
    """A JSON document recorded as a string (policies, filter policies) parsed; dicts pass through."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class Resolver:
    """Finds the resource an input value refers to (an id, ARN, URL or name)."""

    def __init__(self, resources: Iterable[DeclaredResource]) -> None:
        self._by_value: dict[str, list[DeclaredResource]] = {}
        self._arns: list[tuple[str, DeclaredResource]] = []
        for resource in resources:
            if not resource.custom or resource.is_provider:
                continue
            state = resource.state or {}
            values = {resource.id, state.get("id"), state.get("arn"), state.get("url"), state.get("name")}
            values.add(resource.inputs.get("name"))
            for value in values:
                if isinstance(value, str) and value:
                    self._by_value.setdefault(value, []).append(resource)
            arn = state.get("arn")
            if isinstance(arn, str) and arn:
                self._arns.append((arn, resource))
        self._arns.sort(key=lambda item: -len(item[0]))

    def find(self, value: Any, types: Iterable[str] | None = None) -> DeclaredResource | None:
        """The resource `value` names exactly, optionally restricted to some types."""
        if not isinstance(value, str):
            return None
        wanted = set(types) if types is not None else None
        for resource in self._by_value.get(value, []):
            if wanted is None or resource.type in wanted:
                return resource
        return None

    def covered(self, pattern: str, types: Iterable[str]) -> list[DeclaredResource]:
        """Resources an IAM `Resource` entry reaches: the ARN itself, `arn/...`, `arn:...` or a `*` glob."""
        wanted = set(types)
        found: list[DeclaredResource] = []
        for arn, resource in self._arns:
            if resource.type not in wanted:
                continue
            if (
                pattern == arn
                or pattern.startswith(arn + "/")
                or pattern.startswith(arn + ":")
                or ("*" in pattern and pattern != "*" and _glob(pattern, arn))
            ):
                found.append(resource)
        return found


def _glob(pattern: str, text: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(text, pattern)


def filter_event_types(filter_policy: Any) -> list[str]:
    """The string values a subscription filter matches on (e.g. event types), sorted.

    Handles plain lists (`{"type": ["a", "b"]}`), nested message-body filters and
    `{"prefix": ...}` operators; `anything-but` values are shown as `not <value>`.
    """
    policy = _json(filter_policy)
    found: set[str] = set()

    def walk(node: Any, negate: bool = False) -> None:
        if isinstance(node, str):
            found.add(f"not {node}" if negate else node)
        elif isinstance(node, list):
            for item in node:
                walk(item, negate)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "anything-but":
                    walk(value, True)
                elif key == "prefix" and isinstance(value, str):
                    found.add(f"{value}*")
                elif key in ("numeric", "exists", "cidr", "equals-ignore-case", "suffix"):
                    continue
                else:
                    walk(value, negate)

    walk(policy)
    return sorted(found)


def _policy_statements(document: Any) -> list[dict[str, Any]]:
    parsed = _json(document)
    if not isinstance(parsed, dict):
        return []
    statements = parsed.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict) and s.get("Effect", "Allow") == "Allow"]


def role_policies(synthesis: Synthesis, resolver: Resolver) -> dict[str, list[dict[str, Any]]]:
    """Allow statements per role URN, from inline policies, role policies and attached policies."""
    by_role: dict[str, list[dict[str, Any]]] = {}
    for role in synthesis.of_type(ROLE):
        for inline in role.inputs.get("inlinePolicies") or []:
            if isinstance(inline, dict):
                by_role.setdefault(role.urn, []).extend(_policy_statements(inline.get("policy")))
    for rp in synthesis.of_type(ROLE_POLICY):
        target = resolver.find(rp.inputs.get("role"), [ROLE])
        if target is not None:
            by_role.setdefault(target.urn, []).extend(_policy_statements(rp.inputs.get("policy")))
    for attachment in synthesis.of_type(ROLE_POLICY_ATTACHMENT):
        attached = resolver.find(attachment.inputs.get("role"), [ROLE])
        policy = resolver.find(attachment.inputs.get("policyArn"), [POLICY])
        if attached is not None and policy is not None:
            by_role.setdefault(attached.urn, []).extend(_policy_statements(policy.inputs.get("policy")))
    return by_role


def _access(actions: list[str], service: str) -> set[str]:
    """'read' / 'write' / 'publish' / 'invoke' for the actions of one service in a statement."""
    kinds: set[str] = set()
    for action in actions:
        lowered = action.lower()
        prefix, _, verb = lowered.partition(":")
        if prefix not in (service, "*"):
            continue
        if verb in ("*", ""):
            kinds.update({"read", "write"} if service == "dynamodb" else {"publish", "invoke"})
        elif service == "dynamodb":
            stem = verb.rstrip("*")
            wild = verb.endswith("*")
            if any(verb.startswith(w) or (wild and w.startswith(stem)) for w in WRITE_ACTIONS):
                kinds.add("write")
            if any(verb.startswith(r) or (wild and r.startswith(stem)) for r in READ_ACTIONS):
                kinds.add("read")
        elif service == "sns" and verb.startswith("publish"):
            kinds.add("publish")
        elif service == "lambda" and verb.startswith("invokefunction"):
            kinds.add("invoke")
    return kinds


def principals(synthesis: Synthesis, resolver: Resolver) -> dict[str, DeclaredResource]:
    """Role URN → the function or service that runs with it (a service via its task role)."""
    found: dict[str, DeclaredResource] = {}
    for function in synthesis.of_type(FUNCTION):
        role = resolver.find(function.inputs.get("role"), [ROLE])
        if role is not None:
            found[role.urn] = function
    for service in synthesis.of_type(SERVICE):
        task = resolver.find(service.inputs.get("taskDefinition"), [TASK_DEFINITION])
        if task is None:
            continue
        role = resolver.find(task.inputs.get("taskRoleArn"), [ROLE])
        if role is not None:
            found[role.urn] = service
    return found


def build_topology(synthesis: Synthesis) -> Topology:
    """Every node and edge of the stack, in a deterministic order."""
    resolver = Resolver(synthesis.resources)
    nodes = {r.urn: r for r in synthesis.resources if r.type in NODE_TYPES and r.custom}
    topo = Topology(synthesis=synthesis, nodes=nodes)
    edges: list[Edge] = []

    for sub in synthesis.of_type(SUBSCRIPTION):
        topic = resolver.find(sub.inputs.get("topic"), [TOPIC])
        endpoint_value = sub.inputs.get("endpoint")
        target = resolver.find(endpoint_value, [QUEUE, FUNCTION])
        if topic is None:
            continue
        types = filter_event_types(sub.inputs.get("filterPolicy"))
        label = ", ".join(types) if types else "all events"
        if target is None:
            key = f"external:{sub.inputs.get('protocol', '?')}:{endpoint_value}"
            topo.externals[key] = f"{sub.inputs.get('protocol', 'endpoint')} subscriber"
            edges.append(Edge(topic.urn, key, "subscription", label, sub.urn))
        else:
            edges.append(Edge(topic.urn, target.urn, "subscription", label, sub.urn))

    for mapping in synthesis.of_type(MAPPING):
        source = resolver.find(mapping.inputs.get("eventSourceArn"), [QUEUE, TABLE])
        function = resolver.find(mapping.inputs.get("functionName"), [FUNCTION])
        if source is not None and function is not None:
            batch = mapping.inputs.get("batchSize")
            label = f"batch {int(batch)}" if isinstance(batch, int | float) else ""
            edges.append(Edge(source.urn, function.urn, "mapping", label, mapping.urn))

    redrives: list[tuple[DeclaredResource, Any, str]] = [
        (q, q.inputs.get("redrivePolicy"), q.urn) for q in synthesis.of_type(QUEUE)
    ]
    for rp in synthesis.of_type(REDRIVE):
        queue = resolver.find(rp.inputs.get("queueUrl"), [QUEUE])
        if queue is not None:
            redrives.append((queue, rp.inputs.get("redrivePolicy"), rp.urn))
    for queue, policy, via in redrives:
        parsed = _json(policy)
        if not isinstance(parsed, dict):
            continue
        dlq = resolver.find(parsed.get("deadLetterTargetArn"), [QUEUE])
        if dlq is not None:
            count = parsed.get("maxReceiveCount")
            label = f"after {count} receives" if count else "dead letters"
            edges.append(Edge(queue.urn, dlq.urn, "redrive", label, via))

    for target in synthesis.of_type(EVENT_TARGET):
        rule = resolver.find(target.inputs.get("rule"), [EVENT_RULE])
        dest = resolver.find(target.inputs.get("arn"), [FUNCTION, QUEUE, TOPIC])
        if rule is not None and dest is not None:
            edges.append(Edge(rule.urn, dest.urn, "schedule", "", target.urn))
        dead_letter = (target.inputs.get("deadLetterConfig") or {}).get("arn")
        dlq = resolver.find(dead_letter, [QUEUE])
        if rule is not None and dlq is not None:
            edges.append(Edge(rule.urn, dlq.urn, "redrive", "undeliverable", target.urn))
    for schedule in synthesis.of_type(SCHEDULE):
        spec = schedule.inputs.get("target") or {}
        dest = resolver.find(spec.get("arn") if isinstance(spec, dict) else None, [FUNCTION, QUEUE, TOPIC])
        if dest is not None:
            edges.append(Edge(schedule.urn, dest.urn, "schedule", "", schedule.urn))

    runners = principals(synthesis, resolver)
    for role_urn, statements in role_policies(synthesis, resolver).items():
        runner = runners.get(role_urn)
        if runner is None:
            continue
        access: dict[tuple[str, str], set[str]] = {}
        for stmt in statements:
            actions = _strings(stmt.get("Action"))
            for pattern in _strings(stmt.get("Resource")):
                for service, types in (("dynamodb", [TABLE]), ("sns", [TOPIC]), ("lambda", [FUNCTION])):
                    kinds = _access(actions, service)
                    if not kinds:
                        continue
                    for resource in resolver.covered(pattern, types):
                        if resource.urn != runner.urn:
                            access.setdefault((resource.urn, service), set()).update(kinds)
        for (resource_urn, service), kinds in access.items():
            if service == "lambda":
                edges.append(Edge(runner.urn, resource_urn, "invoke", "invokes", role_urn))
            elif service == "sns":
                edges.append(Edge(runner.urn, resource_urn, "grant", "publishes", role_urn))
            else:
                label = " + ".join(k + "s" for k in ("read", "write") if k in kinds)
                edges.append(Edge(runner.urn, resource_urn, "grant", label, role_urn))

    edges.extend(_traffic_edges(synthesis, resolver))
    topo.edges = sorted(set(edges), key=lambda e: (e.kind, e.source, e.target, e.label))
    return topo


def _traffic_edges(synthesis: Synthesis, resolver: Resolver) -> list[Edge]:
    """Load balancer → service, through listener (rule) → target group → service."""
    lb_of_group: dict[str, set[str]] = {}

    def groups_in(actions: Any) -> list[str]:
        found: list[str] = []
        for action in actions or []:
            if not isinstance(action, dict):
                continue
            if action.get("targetGroupArn"):
                found.append(action["targetGroupArn"])
            forward = action.get("forward") or {}
            for group in forward.get("targetGroups") or [] if isinstance(forward, dict) else []:
                if isinstance(group, dict) and group.get("arn"):
                    found.append(group["arn"])
        return found

    listener_lb: dict[str, str] = {}
    for listener in (r for t in LISTENERS for r in synthesis.of_type(t)):
        lb = resolver.find(listener.inputs.get("loadBalancerArn"), LOAD_BALANCERS)
        if lb is None:
            continue
        listener_lb[listener.urn] = lb.urn
        for arn in groups_in(listener.inputs.get("defaultActions")):
            lb_of_group.setdefault(arn, set()).add(lb.urn)
    for rule in (r for t in LISTENER_RULES for r in synthesis.of_type(t)):
        owner = resolver.find(rule.inputs.get("listenerArn"), LISTENERS)
        if owner is None or owner.urn not in listener_lb:
            continue
        for arn in groups_in(rule.inputs.get("actions")):
            lb_of_group.setdefault(arn, set()).add(listener_lb[owner.urn])
    edges: list[Edge] = []
    for service in synthesis.of_type(SERVICE):
        for entry in service.inputs.get("loadBalancers") or []:
            if not isinstance(entry, dict):
                continue
            group = resolver.find(entry.get("targetGroupArn"), TARGET_GROUPS)
            if group is None:
                continue
            arn = (group.state or {}).get("arn", "")
            for lb_urn in sorted(lb_of_group.get(arn, set())):
                edges.append(Edge(lb_urn, service.urn, "traffic", "HTTPS", group.urn))
    return edges
