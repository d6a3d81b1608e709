"""The payment chain of DESIGN §1, composed from the library's messaging, functions and data components.

Nothing here is a second hand-written list of what the functions need. Every function's facts
live in its spec, `lambdas/specs/<function>.py` (`lambdas.specs.catalog.all_specs()`), which this
module reads without importing any handler, Powertools or boto3:
- tables come from `contract.TABLES` (keys, indexes, TTL);
- each topic-fed queue, its subscriptions and their filters come from the `TopicQueue` triggers;
  a `DeadLetters` trigger consumes a queue's DLQ, a `Schedule` runs on EventBridge, and an
  `InvokedOnly` function is invoked by the functions whose environment names it;
- sizing (timeout, memory, batching, concurrency) is the spec's `sizing`; a consumed queue's
  visibility timeout is 6 x its consumer's timeout;
- each function's environment is exactly its spec's `environment` + `optional_environment`, every
  name resolved through ONE table (`ENVIRONMENT_SOURCES`);
- its grants are exactly its spec's `access` (environment variable → the IAM actions it calls
  on the resource that variable names; `"<action>@<index>"` is that action on that index of the
  table), built with `awsblocks.security.iam`'s exact-action vocabulary, plus the KMS keys of those
  resources. Nothing else: a function that reads a table gets no write on it.

Declarations are checked before any resource exists (`access_problems`): a name the table does
not know, a resource variable without an access entry, an entry for a variable the function does
not declare, an action IAM does not check on that kind of resource, or an index the table does
not have stops the program with one message per problem naming the function, the variable and
the spec file to fix.

The stack decides the keys: the platform key everywhere (dev: one $1/month key, not thirty) or,
with `dedicatedKeys`, the components' own key per resource (their secure default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws
from awsblocks.data.table import Table
from awsblocks.functions.code_signing import CodeSigning, CodeSigningArgs, CodeSigningRef
from awsblocks.functions.function import Function, FunctionArgs
from awsblocks.functions.queue_function import QueueFunction, QueueFunctionArgs
from awsblocks.functions.scheduled_function import ScheduledFunction, ScheduledFunctionArgs
from awsblocks.functions.signed_layer import SignedLayer, SignedLayerArgs
from awsblocks.messaging.email_identity import EmailIdentity, EmailIdentityArgs
from awsblocks.messaging.queue import Queue, QueueArgs
from awsblocks.messaging.subscription import TopicFeed
from awsblocks.messaging.topic import Topic, TopicArgs
from awsblocks.security import iam

from infra.config import PROJECT, ConfigError, StackConfig
from infra.data import declare_tables
from lambdas import packaging
from lambdas.shared import books, contract
from lambdas.specs import catalog
from lambdas.specs.model import DeadLetters, FunctionSpec, InvokedOnly, Schedule, TopicQueue

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build" / "lambda"
"""Where the function archives are written (gitignored)."""
ARCHITECTURE: Literal["arm64", "x86_64"] = "arm64"
"""Graviton: about 20% cheaper per GB-second; the Powertools layer ARN matches it."""
OPS_ALERTS = "ops-alerts"
LOCAL_SES_SENDER = f"notifications@{PROJECT}.local"
"""The sender of a local (emulated) stack that sets no `sesSender`."""


# --- where each environment variable comes from ----------------------------------------------


@dataclass(frozen=True)
class FromTable:
    """The table's name; grants the declared actions on it and, for `action@index`, on that index."""

    logical_name: str


@dataclass(frozen=True)
class FromTopic:
    """The topic's ARN; grants the declared actions (sns:Publish) on it."""

    topic: str


@dataclass(frozen=True)
class FromQueue:
    """The queue's URL; grants the declared actions (sqs:SendMessage, …) on it."""

    queue: str


@dataclass(frozen=True)
class FromDeadLetterQueue:
    """The URL of the queue's dead-letter queue; grants the declared actions (sqs:ReceiveMessage, …) on it.

    For a function that reads a DLQ it is not triggered by (the sweeper redrives the ledger's).
    """

    queue: str


@dataclass(frozen=True)
class FromFunction:
    """The function's name; grants the declared actions (lambda:InvokeFunction) on it."""

    function: str


@dataclass(frozen=True)
class FromConfig:
    """A stack config value (`key` names it for readers); grants nothing."""

    key: str
    read: Callable[[StackConfig], str]


@dataclass(frozen=True)
class FromSender:
    """The SES sender address; grants the declared actions (ses:SendEmail, …) as that identity."""


@dataclass(frozen=True)
class FromUserPool:
    """The Cognito user pool id, when the stack passes one; grants the declared actions on the pool."""


@dataclass(frozen=True)
class Constant:
    """A fixed value; grants nothing."""

    value: str


@dataclass(frozen=True)
class OwnName:
    """The function's own (module) name; grants nothing."""


Source = (
    FromTable
    | FromTopic
    | FromQueue
    | FromDeadLetterQueue
    | FromFunction
    | FromConfig
    | FromSender
    | FromUserPool
    | Constant
    | OwnName
)


def settlement_horizon(cfg: StackConfig) -> int:
    """Seconds within which a payment settles with its events recorded (the books auditor's horizon).

    `books.settlement_horizon_seconds` of this chain: each of `retryMaxAttempts` attempts spends
    up to maxReceiveCount receives x the processing queue's visibility timeout, then waits up to
    `retryMaxDelaySeconds`; owed work is swept once `reconcileAfterSeconds` old, on the
    reconciler's next run; plus a margin for the ledger's redeliveries. Defaults: 3 h.
    """
    return books.settlement_horizon_seconds(
        retry_max_attempts=cfg.retry_max_attempts,
        retry_max_delay_seconds=cfg.retry_max_delay_seconds,
        reconcile_after_seconds=cfg.reconcile_after_seconds,
        attempt_seconds=QueueArgs.max_receive_count * queue_visibility(catalog.spec_of("payment_processor")),
        sweep_period_seconds=books.rate_seconds(catalog.schedule_of(catalog.spec_of("reconciler"))),
    )


ENVIRONMENT_SOURCES: dict[str, Source] = {
    **{spec.env_var: FromTable(spec.logical_name) for spec in contract.TABLES},
    contract.ENV_PAYMENTS_TOPIC_ARN: FromTopic(contract.Topic.PAYMENTS.value),
    contract.ENV_FUNDING_TARGET_TOPIC_ARN: FromTopic(contract.Topic.FUNDING_TARGET.value),
    contract.ENV_PAYMENT_PROCESSING_QUEUE_URL: FromQueue("payment-processing"),
    contract.ENV_LEDGER_QUEUE_URL: FromQueue("ledger"),
    contract.ENV_LEDGER_DEAD_LETTER_QUEUE_URL: FromDeadLetterQueue("ledger"),
    contract.ENV_PG_GATEWAY_FUNCTION: FromFunction("pg_gateway"),
    contract.ENV_PG_TRANSIENT_FAILURE_RATE: FromConfig(
        "pgTransientFailureRate", lambda cfg: str(cfg.pg_transient_failure_rate)
    ),
    contract.ENV_PG_DECLINE_RATE: FromConfig("pgDeclineRate", lambda cfg: str(cfg.pg_decline_rate)),
    contract.ENV_PG_LATENCY_MS: FromConfig("pgLatencyMs", lambda cfg: str(cfg.pg_latency_ms)),
    contract.ENV_PG_SEED: FromConfig("pgSeed", lambda cfg: str(cfg.pg_seed)),
    contract.ENV_RETRY_MAX_ATTEMPTS: FromConfig("retryMaxAttempts", lambda cfg: str(cfg.retry_max_attempts)),
    contract.ENV_RETRY_BASE_DELAY_SECONDS: FromConfig(
        "retryBaseDelaySeconds", lambda cfg: str(cfg.retry_base_delay_seconds)
    ),
    contract.ENV_RETRY_MAX_DELAY_SECONDS: FromConfig(
        "retryMaxDelaySeconds", lambda cfg: str(cfg.retry_max_delay_seconds)
    ),
    contract.ENV_RECONCILE_AFTER_SECONDS: FromConfig(
        "reconcileAfterSeconds", lambda cfg: str(cfg.reconcile_after_seconds)
    ),
    contract.ENV_SETTLEMENT_HORIZON_SECONDS: FromConfig(
        "retryMaxAttempts, retryMaxDelaySeconds, reconcileAfterSeconds",
        lambda cfg: str(settlement_horizon(cfg)),
    ),
    contract.ENV_SES_SENDER: FromSender(),
    contract.ENV_COGNITO_USER_POOL_ID: FromUserPool(),
    "POWERTOOLS_SERVICE_NAME": OwnName(),
    "POWERTOOLS_METRICS_NAMESPACE": Constant(contract.METRICS_NAMESPACE),
}
"""Every environment variable a function may declare → where its value comes from."""

RUNTIME_ENVIRONMENT: tuple[str, ...] = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")
"""Set on every function besides what its spec declares: they configure the Powertools layer
(service name and metrics namespace of anything it logs or emits on its own)."""


class AccessDeclarationError(ValueError):
    """Functions' access declarations that cannot become grants; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the functions' AWS access declarations (access in lambdas/specs/<function>.py) cannot become "
            "IAM grants:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


ResourceSource = (
    FromTable | FromTopic | FromQueue | FromDeadLetterQueue | FromFunction | FromSender | FromUserPool
)
RESOURCE_KINDS: dict[type, str] = {
    FromTable: iam.DYNAMODB_TABLE,
    FromTopic: iam.SNS_TOPIC,
    FromQueue: iam.SQS_QUEUE,
    FromDeadLetterQueue: iam.SQS_QUEUE,
    FromFunction: iam.LAMBDA_FUNCTION,
    FromSender: iam.SES_IDENTITY,
    FromUserPool: iam.COGNITO_USER_POOL,
}
"""The kind of AWS resource each resource source names (what `iam` checks actions against)."""
TABLE_SPECS: dict[str, contract.TableSpec] = {spec.logical_name: spec for spec in contract.TABLES}


def _describe(source: Source) -> str:
    """What a variable's value is, for messages."""
    if isinstance(source, FromTable):
        return f"table {source.logical_name}"
    if isinstance(source, FromTopic):
        return f"topic {source.topic}"
    if isinstance(source, FromQueue):
        return f"queue {source.queue}"
    if isinstance(source, FromDeadLetterQueue):
        return f"the dead-letter queue of queue {source.queue}"
    if isinstance(source, FromFunction):
        return f"function {source.function}"
    if isinstance(source, FromSender):
        return "the SES sender identity"
    if isinstance(source, FromUserPool):
        return "the Cognito user pool"
    if isinstance(source, FromConfig):
        return f"stack config {source.key}"
    if isinstance(source, Constant):
        return f"the constant {source.value!r}"
    return "the function's own name"


def split_index_actions(actions: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """("dynamodb:GetItem", "dynamodb:Query@byFunding") → (table actions, {index: actions})."""
    on_table: list[str] = []
    on_index: dict[str, list[str]] = {}
    for entry in actions:
        action, at, index = entry.partition("@")
        if at:
            on_index.setdefault(index, []).append(action)
        else:
            on_table.append(action)
    return tuple(on_table), {index: tuple(found) for index, found in on_index.items()}


def _unmapped(spec: FunctionSpec, var: str) -> str:
    return (
        f"function {spec.name} declares environment variable {var}, which "
        "infra/payment_chain.py ENVIRONMENT_SOURCES does not map; allowed: "
        f"{', '.join(sorted(ENVIRONMENT_SOURCES))} (fix the name in {spec.path}, or add a row to "
        "ENVIRONMENT_SOURCES for a new one)"
    )


def _action_problems(
    spec: FunctionSpec, var: str, source: ResourceSource, actions: tuple[str, ...]
) -> list[str]:
    """Problems of one access entry on a resource variable (each names function, variable, fix)."""
    where = f"function {spec.name}: access[{var}] (on {_describe(source)})"
    fix = f"fix: list in {spec.path} only the actions it calls"
    kind = RESOURCE_KINDS[type(source)]
    if not actions:
        allowed = ", ".join(iam.RESOURCE_ACTIONS[kind])
        return [
            f"{where} lists no actions; fix: list the actions the function calls on it (allowed: "
            f"{allowed}), or drop {var} from its environment in {spec.path} if it calls none"
        ]
    if not isinstance(source, FromTable):
        problems = [
            f"{where}: {entry!r} names an index, but only a table variable takes '<action>@<index>'; {fix}"
            for entry in actions
            if "@" in entry
        ]
        plain = tuple(entry for entry in actions if "@" not in entry)
        if plain:
            problems.extend(f"{where}: {p}; {fix}" for p in iam.action_problems(kind, plain))
        return problems
    on_table, on_index = split_index_actions(actions)
    problems = (
        [f"{where}: {p}; {fix}" for p in iam.action_problems(iam.DYNAMODB_TABLE, on_table)]
        if on_table
        else []
    )
    table = TABLE_SPECS[source.logical_name]
    known = [index.name for index in table.indexes]
    for index, index_actions in on_index.items():
        if index not in known:
            problems.append(
                f"{where}: {', '.join(repr(f'{a}@{index}') for a in index_actions)} names index {index!r}, "
                f"which table {source.logical_name} does not have; allowed: "
                f"{', '.join(known) if known else 'none (the table has no index)'} "
                "(lambdas.shared.contract TABLES declares each table's indexes)"
            )
            continue
        problems.extend(
            f"{where}: index {index}: {p}; {fix}"
            for p in iam.action_problems(iam.DYNAMODB_INDEX, index_actions)
        )
    return problems


def access_problems(spec: FunctionSpec) -> list[str]:
    """Everything wrong between one spec's environment and its access (empty when they agree).

    Each problem names the function, the variable and the spec file to fix. Pure over the spec.
    """
    declared = spec.declared_environment
    access = spec.access
    problems: list[str] = []
    for var in declared:
        source = ENVIRONMENT_SOURCES.get(var)
        if source is None:
            problems.append(_unmapped(spec, var))
        elif isinstance(source, ResourceSource) and var not in access:
            kind = RESOURCE_KINDS[type(source)]
            index_hint = " ('<action>@<index>' for an index)" if isinstance(source, FromTable) else ""
            problems.append(
                f"function {spec.name}: {var} names {_describe(source)} but access has no entry for it; fix: "
                f"add `{var}: (...)` to access in {spec.path} with the exact actions the function "
                f"calls on it{index_hint}; allowed: {', '.join(iam.RESOURCE_ACTIONS[kind])}"
            )
    for var, actions in access.items():
        source = ENVIRONMENT_SOURCES.get(var)
        if var not in declared:
            problems.append(
                f"function {spec.name}: access names {var}, which its environment and optional_environment "
                f"do not declare; fix: declare {var} in {spec.path} environment (or "
                "optional_environment), or remove the access entry"
            )
        elif source is not None and not isinstance(source, ResourceSource):
            problems.append(
                f"function {spec.name}: access names {var}, whose value is {_describe(source)}, not an AWS "
                f"resource, so no action can be granted on it; fix: remove the entry from access in "
                f"{spec.path}"
            )
        elif isinstance(source, ResourceSource):
            problems.extend(_action_problems(spec, var, source, actions))
    return problems


def check_access(specs: Iterable[FunctionSpec]) -> None:
    """Raise AccessDeclarationError listing every problem of every spec's access (before any resource)."""
    problems = [problem for spec in specs for problem in access_problems(spec)]
    if problems:
        raise AccessDeclarationError(problems)


# --- what the layer declares -----------------------------------------------------------------


@dataclass(frozen=True)
class UserPoolRef:
    """A Cognito user pool the notifier may look addresses up in."""

    id: pulumi.Input[str]
    arn: pulumi.Input[str]


AnyFunction = Function | QueueFunction | ScheduledFunction


@dataclass
class PaymentChain:
    """What the payment chain declared, for the API layer, observability and tests."""

    tables: dict[str, Table]
    topics: dict[str, Topic]
    queues: dict[str, Queue]
    functions: dict[str, AnyFunction]
    sender: EmailIdentity | None
    """The notifier's SES identity; None when the stack configures no sender."""
    environments: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=dict)
    code_signing: CodeSigning | None = None
    """The signing bucket, Signer profile and enforcing config every function deploys under
    (None only when `declare_payment_chain(code_signing=False)` opted out)."""

    @property
    def fundings_table(self) -> Table:
        """Campaigns."""
        return self.tables[contract.FUNDINGS_TABLE.logical_name]

    @property
    def payments_table(self) -> Table:
        """Payments."""
        return self.tables[contract.PAYMENTS_TABLE.logical_name]

    @property
    def idempotency_table(self) -> Table:
        """Powertools idempotency records, shared with the API."""
        return self.tables[contract.IDEMPOTENCY_TABLE.logical_name]

    @property
    def payments_topic(self) -> Topic:
        """Where the API publishes payment.requested."""
        return self.topics[contract.Topic.PAYMENTS.value]

    @property
    def alerts_topic(self) -> Topic:
        """ops-alerts: every alarm's action."""
        return self.topics[OPS_ALERTS]


def chain_problems(cfg: StackConfig) -> list[str]:
    """Config the payment chain cannot run without (checked before anything is declared).

    Without `sesSender` a dev or prod stack declares no SES identity and gives no function
    SES_SENDER; that is refused while a function still declares SES_SENDER required.
    """
    if cfg.ses_sender or cfg.environment == "local":
        return []
    needing = [spec.name for spec in catalog.all_specs() if contract.ENV_SES_SENDER in spec.environment]
    if not needing:
        return []
    return [
        f"{PROJECT}:sesSender: required on a {cfg.environment} stack while {', '.join(needing)} "
        f"requires {contract.ENV_SES_SENDER}; allowed: an email address of yours the notifier sends "
        f"from (`pulumi config set {PROJECT}:sesSender <address>`; SES emails it a verification link)"
    ]


def subscription_filter(trigger: TopicQueue, topic: contract.Topic) -> dict[str, list[str]] | None:
    """The filter of a consumer queue's subscription to `topic`; None when it takes every event of it."""
    events = catalog.events_on(trigger, topic)
    everything = [event for event, on in contract.TOPIC_OF_EVENT.items() if on is topic]
    if set(events) == set(everything):
        return None
    return {"type": [str(event) for event in events]}


def declaration_order(specs: Iterable[FunctionSpec]) -> list[FunctionSpec]:
    """Specs in an order where every invoked function comes before its callers."""
    by_name = {spec.name: spec for spec in specs}
    ordered: list[FunctionSpec] = []

    def visit(spec: FunctionSpec, path: tuple[str, ...]) -> None:
        if spec in ordered:
            return
        if spec.name in path:
            raise ValueError(f"functions invoke each other in a cycle: {' -> '.join((*path, spec.name))}")
        for var in spec.declared_environment:
            source = ENVIRONMENT_SOURCES.get(var)
            if isinstance(source, FromFunction):
                if source.function not in by_name:
                    raise ValueError(
                        f"function {spec.name}: {var} names function {source.function}, which has no spec; "
                        f"fix: add lambdas/specs/{source.function}.py to lambdas/specs/catalog.py SPECS"
                    )
                visit(by_name[source.function], (*path, spec.name))
        ordered.append(spec)

    for spec in by_name.values():
        visit(spec, ())
    return ordered


@dataclass
class _Resolved:
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    grants: list[iam.Grant] = field(default_factory=list)
    keys: list[pulumi.Output[str]] = field(default_factory=list)

    def add_key(self, key: pulumi.Output[str]) -> None:
        if not any(key is known for known in self.keys):
            self.keys.append(key)


def _label(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


class _Builder:
    def __init__(
        self,
        cfg: StackConfig,
        tables: dict[str, Table],
        topics: dict[str, Topic],
        queues: dict[str, Queue],
        sender: EmailIdentity | None,
        user_pool: UserPoolRef | None,
    ) -> None:
        self.cfg = cfg
        self.tables = tables
        self.topics = topics
        self.queues = queues
        self.sender = sender
        self.user_pool = user_pool
        self.functions: dict[str, AnyFunction] = {}

    def resolve(self, spec: FunctionSpec) -> _Resolved:
        """The environment and grants of one function, from its spec's environment and access.

        `declare_payment_chain` has checked every declaration first (`check_access`).
        """
        resolved = _Resolved()
        for var in (*spec.declared_environment, *RUNTIME_ENVIRONMENT):
            if var in resolved.environment:
                continue
            source = ENVIRONMENT_SOURCES.get(var)
            if source is None:
                raise ValueError(_unmapped(spec, var))
            value = self._provide(spec.name, var, source, spec.access.get(var, ()), resolved)
            if value is None:
                if var in spec.environment:
                    raise ValueError(
                        f"function {spec.name} requires {var}, which this stack does not provide"
                    )
                continue
            resolved.environment[var] = value
        if resolved.keys:
            resolved.grants.append(iam.kms_use(resolved.keys, label="Resources"))
        return resolved

    def _provide(
        self, function: str, var: str, source: Source, actions: tuple[str, ...], into: _Resolved
    ) -> pulumi.Input[str] | None:
        """The variable's value; for a resource, also exactly the `actions` its access declares on it."""
        if isinstance(source, FromTable):
            table = self.tables[source.logical_name]
            on_table, on_index = split_index_actions(actions)
            into.grants.extend(
                iam.dynamodb_access(table.arn, on_table, indexes=on_index, label=_label(source.logical_name))
            )
            into.add_key(table.kms_key_arn)
            return table.name
        if isinstance(source, FromTopic):
            topic = self.topics[source.topic]
            into.grants.append(iam.sns_access(topic.arn, actions, label=_label(source.topic)))
            into.add_key(topic.kms_key_arn)
            return topic.arn
        if isinstance(source, FromQueue):
            queue = self.queues[source.queue]
            into.grants.append(iam.sqs_access(queue.arn, actions, label=_label(source.queue)))
            into.add_key(queue.kms_key_arn)
            return queue.url
        if isinstance(source, FromDeadLetterQueue):
            owner = self.queues.get(source.queue)
            dead_letter = owner.dead_letter if owner is not None else None
            if dead_letter is None:
                with_dlq = sorted(
                    name for name, known in self.queues.items() if known.dead_letter is not None
                )
                problem = (
                    "has no dead-letter queue" if owner is not None else "is not a queue of the payment chain"
                )
                raise ValueError(
                    f"function {function}: {var} names the dead-letter queue of queue {source.queue!r}, "
                    f"which {problem}; fix: FromDeadLetterQueue in the {var} row of infra/payment_chain.py "
                    f"ENVIRONMENT_SOURCES names one of: {', '.join(with_dlq)}"
                )
            into.grants.append(
                iam.sqs_access(dead_letter.arn, actions, label=f"{_label(source.queue)}DeadLetter")
            )
            if dead_letter.kms_key_arn is not None:
                into.add_key(dead_letter.kms_key_arn)
            return dead_letter.url
        if isinstance(source, FromFunction):
            target = self.functions.get(source.function)
            if target is None:
                raise ValueError(f"function {function} needs {source.function} ({var}) declared first")
            into.grants.append(iam.lambda_access(target.function_arn, actions, label=_label(source.function)))
            return target.function_name
        if isinstance(source, FromConfig):
            return source.read(self.cfg)
        if isinstance(source, FromSender):
            if self.sender is None:
                return None
            into.grants.append(iam.ses_access(self.sender.arn, actions, label="Sender"))
            return self.sender.email
        if isinstance(source, FromUserPool):
            if self.user_pool is None:
                return None
            into.grants.append(iam.cognito_access(self.user_pool.arn, actions, label="UserPool"))
            return self.user_pool.id
        if isinstance(source, Constant):
            return source.value
        return function  # OwnName


def callers_of(function: str) -> list[str]:
    """The functions whose environment names `function` (they invoke it), in declaration order."""
    return [
        spec.name
        for spec in catalog.all_specs()
        if spec.name != function
        and any(ENVIRONMENT_SOURCES.get(var) == FromFunction(function) for var in spec.declared_environment)
    ]


def reserved_concurrency(function: str) -> int | None:
    """The function's reservation: its spec's, or for a function only others invoke, the sum of
    its callers' (each calling invocation waits on one of its invocations)."""
    spec = catalog.spec_of(function)
    if not isinstance(spec.trigger, InvokedOnly):
        return spec.sizing.reserved_concurrency
    return sum(reserved_concurrency(caller) or 0 for caller in callers_of(function)) or None


def powertools_layer() -> pulumi.Output[str]:
    """The Powertools layer of the release requirements.lock pins, from AWS's public per-release
    SSM parameter (resolved when the program runs: the same library as the tests, never a layer
    number typed by hand)."""
    parameter = packaging.powertools_layer_ssm_parameter(ARCHITECTURE)
    return aws.ssm.get_parameter_output(name=parameter).value


def signed_powertools_layer(signing: CodeSigning, opts: pulumi.ResourceOptions) -> SignedLayer:
    """The pinned Powertools as this stack's own layer, signed by its profile.

    Why not AWS's public Powertools layer: with enforcement on, Lambda refuses every layer not
    signed by an allowed profile, and the public layers are published unsigned
    (https://docs.aws.amazon.com/lambda/latest/dg/configuring-codesigning.html, "all layers that
    are added to the function must also be signed by one of the allowed signing profiles";
    https://github.com/aws-powertools/powertools-lambda-python/issues/1108).
    """
    return SignedLayer(
        "powertools",
        SignedLayerArgs(
            archive=str(packaging.build_layer_archive(BUILD_DIR)),
            code_signing=signing.ref,
            compatible_runtimes=[packaging.RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"Powertools for AWS Lambda (Python) {packaging.POWERTOOLS_VERSION}, "
            "signed by this stack",
        ),
        opts=opts,
    )


def _function_args(
    cfg: StackConfig,
    spec: FunctionSpec,
    resolved: _Resolved,
    log_key: pulumi.Input[str] | None,
    layer: pulumi.Input[str],
    code_signing: CodeSigningRef | None = None,
) -> FunctionArgs:
    """The packaged archive, runtime, sizing, environment and grants of one function."""
    function = spec.name
    return FunctionArgs(
        name_prefix=cfg.name_prefix,
        code=str(packaging.build_archive(function, BUILD_DIR)),
        handler=packaging.handler_of(function),
        runtime=packaging.RUNTIME,
        architecture=ARCHITECTURE,
        timeout_seconds=spec.sizing.timeout_seconds,
        memory_mb=spec.sizing.memory_mb,
        environment=resolved.environment,
        layers=[layer],
        grants=resolved.grants,
        log_retention_days=cfg.log_retention_days,
        log_kms_key_arn=log_key,
        reserved_concurrency=reserved_concurrency(function),
        description=f"{PROJECT} {function}",
        code_signing=code_signing,
    )


def queue_visibility(spec: FunctionSpec) -> int:
    """A consumed queue's visibility timeout: 6 x its consumer's timeout (AWS guidance)."""
    return 6 * spec.sizing.timeout_seconds


def declare_payment_chain(
    cfg: StackConfig,
    *,
    platform_key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    user_pool: UserPoolRef | None = None,
    code_signing: bool = True,
) -> PaymentChain:
    """Declare topics, queues, subscriptions, tables and every function of DESIGN §1, from their specs.

    Every function deploys signed (`CodeSigning`): one artifact bucket, Signer profile and
    enforcing code signing configuration per stack, and the pinned Powertools as the stack's own
    signed layer. `code_signing=False` is the explicit opt-out (unsigned archives, AWS's public
    Powertools layer; the policy pack then fails `lambda-code-signing`).
    """
    specs = catalog.all_specs()
    problems = chain_problems(cfg)
    if problems:
        raise ConfigError(cfg.stack, problems)
    check_access(specs)
    key: pulumi.Input[str] | None = None if cfg.dedicated_keys else platform_key_arn

    tables = declare_tables(
        kms_key_arn=key, deletion_protection=cfg.deletion_protection, opts=opts, name_prefix=cfg.name_prefix
    )
    alerts = Topic(
        OPS_ALERTS,
        TopicArgs(
            name_prefix=cfg.name_prefix,
            kms_key_arn=key,
            # Alarms; and pipeline notifications (infra/pipeline.py) when the stack has a pipeline.
            publisher_services=["cloudwatch", *(["codestar-notifications"] if cfg.pipeline_enabled else [])],
            email_subscriptions=[cfg.alert_email] if cfg.alert_email else [],
        ),
        opts=opts,
    )
    topics: dict[str, Topic] = {OPS_ALERTS: alerts}
    for topic in contract.Topic:
        topics[topic.value] = Topic(
            topic.value, TopicArgs(kms_key_arn=key, name_prefix=cfg.name_prefix), opts=opts
        )

    queues: dict[str, Queue] = {}
    dead_letter_visibility = {
        spec.trigger.source_queue: queue_visibility(spec)
        for spec in specs
        if isinstance(spec.trigger, DeadLetters)
    }
    for consumer, fed in catalog.queue_consumers():
        queues[fed.queue] = Queue(
            fed.queue,
            QueueArgs(
                name_prefix=cfg.name_prefix,
                alarm_topic_arn=alerts.arn,
                visibility_timeout_seconds=queue_visibility(consumer),
                dead_letter_visibility_timeout_seconds=dead_letter_visibility.get(fed.queue),
                kms_key_arn=key,
                subscriptions=[
                    TopicFeed(
                        topics[topic.value].arn,
                        filter_policy=subscription_filter(fed, topic),
                        name=topic.value,
                    )
                    for topic in catalog.subscribed_topics(fed)
                ],
            ),
            opts=opts,
        )

    # No sender configured (dev/prod without sesSender): no identity, and no function gets SES_SENDER.
    sender = (
        EmailIdentity(
            "notifications-sender",
            EmailIdentityArgs(email=cfg.ses_sender or LOCAL_SES_SENDER, name_prefix=cfg.name_prefix),
            opts=opts,
        )
        if cfg.ses_sender or cfg.environment == "local"
        else None
    )
    builder = _Builder(cfg, tables, topics, queues, sender, user_pool)
    environments: dict[str, dict[str, pulumi.Input[str]]] = {}
    signing = (
        CodeSigning(
            "code-signing",
            CodeSigningArgs(force_destroy=not cfg.deletion_protection, name_prefix=cfg.name_prefix),
            opts=opts,
        )
        if code_signing
        else None
    )
    layer = signed_powertools_layer(signing, opts).arn if signing is not None else powertools_layer()
    for spec in declaration_order(specs):
        resolved = builder.resolve(spec)
        environments[spec.name] = resolved.environment
        args = _function_args(cfg, spec, resolved, key, layer, signing.ref if signing else None)
        component_name = spec.name.replace("_", "-")
        trigger = spec.trigger
        declared: AnyFunction
        if isinstance(trigger, TopicQueue | DeadLetters):
            if isinstance(trigger, TopicQueue):
                consumed = queues[trigger.queue].ref
            else:
                dead_letter = queues[trigger.source_queue].dead_letter
                assert dead_letter is not None, "every chain queue has a dead-letter queue"
                consumed = dead_letter
            declared = QueueFunction(
                component_name,
                QueueFunctionArgs(
                    **vars(args),
                    queue=consumed,
                    batch_size=spec.sizing.batch_size,
                    batching_window_seconds=spec.sizing.batching_window_seconds,
                    maximum_concurrency=spec.sizing.maximum_concurrency,
                ),
                opts=opts,
            )
        elif isinstance(trigger, Schedule):
            declared = ScheduledFunction(
                component_name,
                ScheduledFunctionArgs(
                    **vars(args),
                    schedule_expression=trigger.expression,
                    alarm_topic_arn=alerts.arn,
                    dead_letter_kms_key_arn=key,
                ),
                opts=opts,
            )
        else:
            declared = Function(component_name, args, opts=opts)
        builder.functions[spec.name] = declared

    chain = PaymentChain(
        tables=tables,
        topics=topics,
        queues=queues,
        functions=builder.functions,
        sender=sender,
        environments=environments,
        code_signing=signing,
    )
    _export(chain)
    return chain


def _camel(name: str) -> str:
    label = _label(name)
    return label[:1].lower() + label[1:]


def _export(chain: PaymentChain) -> None:
    for name, table in chain.tables.items():
        pulumi.export(f"{_camel(name)}TableName", table.name)
    for name, topic in chain.topics.items():
        pulumi.export(f"{_camel(name)}TopicArn", topic.arn)
    for name, queue in chain.queues.items():
        pulumi.export(f"{_camel(name)}QueueUrl", queue.url)
        if queue.dead_letter is not None:
            pulumi.export(f"{_camel(name)}DeadLetterQueueUrl", queue.dead_letter.url)
    pulumi.export(
        "functionNames", {name: function.function_name for name, function in chain.functions.items()}
    )
