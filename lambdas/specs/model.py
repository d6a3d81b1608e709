"""The shape of a function's spec (`FunctionSpec`), standard library only.

Every function archive carries this module with its own spec, and the infrastructure imports it at
synthesis: nothing here may pull in boto3, Powertools or a handler. A spec refuses values AWS
would refuse (or that would silently misbehave) when it is built, naming the function, the value
and the fix, so a mistake stops the import of the spec, not a deployment half-way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

MAX_TIMEOUT_SECONDS = 900
"""Lambda's ceiling for one invocation."""
MEMORY_MB_RANGE = (128, 10_240)
"""Lambda's memory range (MB)."""
MAX_BATCH_SIZE = 10_000
"""An SQS event source mapping's ceiling (standard queue)."""
MAX_BATCHING_WINDOW_SECONDS = 300
"""An SQS event source mapping's `MaximumBatchingWindowInSeconds` ceiling."""
MAXIMUM_CONCURRENCY_RANGE = (2, 1000)
"""An SQS event source mapping's `ScalingConfig.MaximumConcurrency` range."""
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class SpecError(ValueError):
    """A spec AWS would refuse or that would misbehave; the message names the function and the fix."""


@dataclass(frozen=True)
class TopicQueue:
    """Consumes `queue`, which subscribes to every topic that publishes one of `events`.

    Each subscription's filter policy is derived from `events` (no filter when the queue takes
    every event of that topic); the queue's visibility timeout from the consumer's timeout.
    """

    queue: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class DeadLetters:
    """Consumes the dead-letter queue of `source_queue` (a `TopicQueue` queue of another function)."""

    source_queue: str


@dataclass(frozen=True)
class Schedule:
    """Runs on an EventBridge schedule (`rate(...)` or `cron(...)`); failed runs go to its own DLQ."""

    expression: str


@dataclass(frozen=True)
class InvokedOnly:
    """No trigger: other functions invoke it (their environment names it through a function source)."""


Trigger = TopicQueue | DeadLetters | Schedule | InvokedOnly


@dataclass(frozen=True)
class Sizing:
    """Timeout, memory and, for a queue consumer, its event source mapping's batching and scaling.

    A consumed queue's visibility timeout is derived: 6 x `timeout_seconds` (AWS guidance).
    """

    timeout_seconds: int
    memory_mb: int = 256
    batch_size: int = 10
    batching_window_seconds: int = 0
    maximum_concurrency: int | None = None
    reserved_concurrency: int | None = None
    """Executions no other function can take (and this one's ceiling): set on the money path, at
    least the mapping's `maximum_concurrency` (AWS: a lower reservation throttles the pollers and
    redelivers messages). A function only other functions invoke gets the sum of its callers'
    (`infra/payment_chain.py reserved_concurrency`), so its spec sets none. The account must keep
    100 unreserved: the chain reserves about 70, so an account whose Lambda concurrency quota is
    still the new-account 10 must raise it first."""


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """Everything the infrastructure and the handler need to know about one function.

    `environment` is what the handler requires at cold start (and the stack must provide);
    `optional_environment` what it reads when set. `access` maps each environment variable that
    names an AWS resource to the exact IAM actions the function calls on it ("<action>@<index>"
    for an index of a table); the infrastructure grants exactly these.
    """

    name: str
    trigger: Trigger
    environment: tuple[str, ...]
    optional_environment: tuple[str, ...] = ()
    access: Mapping[str, tuple[str, ...]]
    sizing: Sizing

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise SpecError(
                f"the spec of function {self.name} ({self.path}) is not valid:\n"
                + "\n".join(f"  - {problem}" for problem in problems)
            )
        object.__setattr__(self, "access", MappingProxyType(dict(self.access)))

    @property
    def path(self) -> str:
        """Where this spec lives, for messages that say which file to fix."""
        return f"lambdas/specs/{self.name}.py"

    @property
    def declared_environment(self) -> tuple[str, ...]:
        """Required then optional names, each once."""
        return tuple(dict.fromkeys((*self.environment, *self.optional_environment)))

    def problems(self) -> list[str]:
        """What is wrong with this spec's own values (empty when nothing is)."""
        where = f"function {self.name}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            return [
                f"function name {self.name!r} is not a module name; fix: lower_snake_case, the name of "
                "its handler module lambdas/<name>.py"
            ]
        problems: list[str] = []
        for label, names in (
            ("environment", self.environment),
            ("optional_environment", self.optional_environment),
        ):
            if not isinstance(names, tuple) or not all(isinstance(n, str) and n for n in names):
                problems.append(
                    f"{where}: {label}={names!r}; fix: a tuple of variable names such as "
                    "(PAYMENTS_TABLE.env_var,) (a one-element tuple needs its trailing comma)"
                )
        both = sorted(set(self.environment) & set(self.optional_environment))
        if both:
            problems.append(
                f"{where}: {', '.join(both)} is both required and optional; fix: keep it in one of "
                f"environment or optional_environment in {self.path}"
            )
        problems.extend(self._access_shape_problems())
        problems.extend(self._sizing_problems())
        if isinstance(self.trigger, Schedule) and not re.fullmatch(
            r"(rate|cron)\(.+\)", self.trigger.expression
        ):
            problems.append(
                f"{where}: Schedule({self.trigger.expression!r}) is not an EventBridge expression; fix: "
                "'rate(5 minutes)' or 'cron(0 3 * * ? *)'"
            )
        if isinstance(self.trigger, TopicQueue) and not self.trigger.events:
            problems.append(
                f"{where}: TopicQueue({self.trigger.queue!r}) consumes no events, so its queue would "
                "subscribe to nothing; fix: list the events it handles"
            )
        return problems

    def _access_shape_problems(self) -> list[str]:
        where = f"function {self.name}: {self.path}"
        if not isinstance(self.access, Mapping):
            return [
                f"{where} access is {type(self.access).__name__}; fix: a dict, "
                '{PAYMENTS_TABLE.env_var: ("dynamodb:GetItem",), …}'
            ]
        problems = []
        for var, actions in self.access.items():
            if not isinstance(var, str):
                problems.append(f"{where} access has key {var!r}; fix: an environment variable name (a str)")
            elif not isinstance(actions, tuple) or not all(isinstance(a, str) for a in actions):
                problems.append(
                    f"{where} access[{var!r}] is {actions!r}; fix: a tuple of IAM action names such as "
                    "('dynamodb:GetItem',) (a one-element tuple needs its trailing comma)"
                )
        return problems

    def _sizing_problems(self) -> list[str]:
        sizing = self.sizing
        where = f"function {self.name}: sizing"
        fix = f"in {self.path}"
        problems: list[str] = []
        if not 1 <= sizing.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            problems.append(
                f"{where}.timeout_seconds={sizing.timeout_seconds}; fix: 1 to {MAX_TIMEOUT_SECONDS} {fix}"
            )
        low, high = MEMORY_MB_RANGE
        if not low <= sizing.memory_mb <= high:
            problems.append(f"{where}.memory_mb={sizing.memory_mb}; fix: {low} to {high} {fix}")
        consumes_queue = isinstance(self.trigger, TopicQueue | DeadLetters)
        if consumes_queue:
            if not 1 <= sizing.batch_size <= MAX_BATCH_SIZE:
                problems.append(f"{where}.batch_size={sizing.batch_size}; fix: 1 to {MAX_BATCH_SIZE} {fix}")
            if not 0 <= sizing.batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
                problems.append(
                    f"{where}.batching_window_seconds={sizing.batching_window_seconds}; fix: 0 to "
                    f"{MAX_BATCHING_WINDOW_SECONDS} {fix}"
                )
            if sizing.batch_size > 10 and sizing.batching_window_seconds < 1:
                problems.append(
                    f"{where}.batch_size={sizing.batch_size} needs a batching window (SQS refuses a batch "
                    f"above 10 without one); fix: batching_window_seconds of at least 1 {fix}"
                )
            low, high = MAXIMUM_CONCURRENCY_RANGE
            if sizing.maximum_concurrency is not None and not low <= sizing.maximum_concurrency <= high:
                problems.append(
                    f"{where}.maximum_concurrency={sizing.maximum_concurrency}; fix: {low} to {high}, "
                    f"or None for no cap {fix}"
                )
        else:
            default = Sizing(timeout_seconds=sizing.timeout_seconds)
            for knob in ("batch_size", "batching_window_seconds", "maximum_concurrency"):
                if getattr(sizing, knob) != getattr(default, knob):
                    problems.append(
                        f"{where}.{knob}={getattr(sizing, knob)} applies only to a queue consumer, and "
                        f"{self.name} is triggered by {type(self.trigger).__name__}; fix: remove it {fix}"
                    )
        if sizing.reserved_concurrency is not None:
            if isinstance(self.trigger, InvokedOnly):
                problems.append(
                    f"{where}.reserved_concurrency={sizing.reserved_concurrency} on a function only others "
                    f"invoke: its reservation is the sum of its callers'; fix: remove it {fix}"
                )
            elif sizing.reserved_concurrency < 1:
                problems.append(
                    f"{where}.reserved_concurrency={sizing.reserved_concurrency}; fix: at least 1 (0 would "
                    f"stop the function), or None {fix}"
                )
            elif (
                consumes_queue
                and sizing.maximum_concurrency is not None
                and sizing.reserved_concurrency < sizing.maximum_concurrency
            ):
                problems.append(
                    f"{where}.reserved_concurrency={sizing.reserved_concurrency} is below its "
                    f"maximum_concurrency={sizing.maximum_concurrency} (AWS: the pollers get throttled and "
                    f"messages redelivered); fix: reserve at least {sizing.maximum_concurrency} {fix}"
                )
        return problems
