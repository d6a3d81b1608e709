"""Faults at every layer, seeded and reproducible (DESIGN §5).

- `AwsFaults`: a share (`AWS_FAULT_RATE`) of the AWS calls the functions and the API make fails
  as AWS fails them: throttling (DynamoDB ThrottlingException and
  ProvisionedThroughputExceededException, SQS RequestThrottled, SNS/SES Throttling…) and 5xx
  (InternalServerError, ServiceUnavailable…). The emulator's gatekeeper draws and renders them
  in the request's own protocol (`awswire.render_error`), so boto3 sees exactly what AWS sends and
  retries, or not, by its own policy. Event source mapping pollers and the runner are never
  faulted (AWS's pollers retry internally; the runner is not part of the system under test).
- `CrashPlanner`: a share (`CRASH_RATE`) of invocations whose execution environment is killed
  mid-invocation, at a point drawn from {before any AWS call, after the 1st, 2nd … write, after
  the handler returned but before its result was sent}. The worker counts the function's
  mutating AWS calls (`is_mutating`) and kills itself at that point; the runtime sees the
  environment die as Lambda reports it (Runtime.ExitError) and replaces it.

Every draw comes from `random.Random` seeded with `FAULT_SEED` (per function for crashes), so a
run with the same seed and the same order of calls injects the same faults.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections import Counter

from toolchain.embedded.awswire import WireError

FAULTED_SESSION_KINDS = frozenset({"function", "api"})
"""Sessions whose calls may be faulted: a function's execution role, the API's task role."""

_THROTTLE_MESSAGE = "Rate exceeded"
AWS_FAULTS: dict[str, tuple[WireError, ...]] = {
    "dynamodb": (
        WireError(
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
            400,
            json_type="com.amazon.coral.availability#ThrottlingException",
        ),
        WireError(
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. "
            "Consider increasing your provisioning level with the UpdateTable API.",
            400,
            json_type="com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        ),
        WireError(
            "InternalServerError",
            "Internal server error",
            500,
            sender_fault=False,
            json_type="com.amazonaws.dynamodb.v20120810#InternalServerError",
        ),
        WireError(
            "ServiceUnavailable",
            "The service is currently unavailable or busy.",
            503,
            sender_fault=False,
            json_type="com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
        ),
    ),
    "sqs": (
        WireError(
            "RequestThrottled",
            _THROTTLE_MESSAGE,
            400,
            json_type="com.amazonaws.sqs#RequestThrottled",
            query_code="RequestThrottled",
        ),
        WireError(
            "InternalError",
            "We encountered an internal error. Please try again.",
            500,
            sender_fault=False,
            json_type="com.amazonaws.sqs#InternalError",
            query_code="InternalError",
        ),
        WireError(
            "ServiceUnavailable",
            "Service is unavailable. Please try again.",
            503,
            sender_fault=False,
            json_type="com.amazonaws.sqs#ServiceUnavailable",
            query_code="ServiceUnavailable",
        ),
    ),
    "sns": (
        WireError("Throttling", _THROTTLE_MESSAGE, 400),
        WireError("InternalError", "Internal Error", 500, sender_fault=False),
        WireError("ServiceUnavailable", "Service Unavailable", 503, sender_fault=False),
    ),
    "ses": (
        WireError("Throttling", "Maximum sending rate exceeded.", 400),
        WireError("ServiceUnavailable", "Service Unavailable", 503, sender_fault=False),
    ),
    "cognito-idp": (
        WireError("TooManyRequestsException", _THROTTLE_MESSAGE, 400),
        WireError("InternalErrorException", "Internal error", 500, sender_fault=False),
    ),
    "lambda": (
        WireError("TooManyRequestsException", "Rate Exceeded.", 429),
        WireError("ServiceException", "An internal error occurred.", 500, sender_fault=False),
    ),
}
DEFAULT_JSON_FAULTS = (
    WireError("ThrottlingException", _THROTTLE_MESSAGE, 400),
    WireError("InternalFailure", "An internal error occurred.", 500, sender_fault=False),
    WireError("ServiceUnavailable", "Service Unavailable", 503, sender_fault=False),
)
DEFAULT_QUERY_FAULTS = (
    WireError("Throttling", _THROTTLE_MESSAGE, 400),
    WireError("InternalFailure", "An internal error occurred.", 500, sender_fault=False),
    WireError("ServiceUnavailable", "Service Unavailable", 503, sender_fault=False),
)


def faults_for(service: str, protocol: str) -> tuple[WireError, ...]:
    """The throttling and 5xx errors AWS answers calls to `service` with (none for CBOR)."""
    if service in AWS_FAULTS:
        return AWS_FAULTS[service]
    if protocol in ("json", "rest-json"):
        return DEFAULT_JSON_FAULTS
    if protocol in ("query", "rest-xml"):
        return DEFAULT_QUERY_FAULTS
    return ()


def check_rate(name: str, value: float) -> float:
    """A probability knob, or a clear error naming it."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}: allowed: a probability between 0 and 1 (e.g. 0.05)")
    return value


class AwsFaults:
    """Seeded decisions: does this call fail, and how (thread-safe; counts what it injected)."""

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        self.rate = check_rate("AWS_FAULT_RATE", rate)
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        """`service:Code` → how many were injected."""

    def configure(self, rate: float, seed: int) -> None:
        """New rate and seed (the draw sequence restarts from the seed)."""
        with self._lock:
            self.rate = check_rate("AWS_FAULT_RATE", rate)
            self.seed = seed
            self._random = random.Random(seed)

    def draw(self, service: str, protocol: str) -> WireError | None:
        """The error to answer this call with, or None to serve it."""
        if self.rate <= 0:
            return None
        choices = faults_for(service, protocol)
        if not choices:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            error = choices[self._random.randrange(len(choices))]
            self.injected[f"{service}:{error.code}"] += 1
        return error

    @property
    def total(self) -> int:
        """Faults injected so far."""
        return sum(self.injected.values())


# --- crashes ------------------------------------------------------------------------------------

CRASH_WRITE_POINTS = 3
"""A crash happens before any AWS call (0), after the 1st..3rd write, or after the handler returns."""
CRASH_AT_RETURN = "return"
CRASH_HEADER = "X-Local-Crash"
"""The invoke request header that tells a worker where to die (absent: it does not)."""

_READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Query",
    "Scan",
    "BatchGet",
    "TransactGet",
    "Receive",
    "Head",
    "Select",
    "Lookup",
    "Search",
)


def is_mutating(operation: str) -> bool:
    """Does this API operation change state (a write, a publish, an invoke)? Reads do not."""
    return not operation.startswith(_READ_PREFIXES)


def crash_point_label(point: str) -> str:
    """Human text for a crash point."""
    if point == CRASH_AT_RETURN:
        return "after the handler returned, before its result was sent"
    if point == "0":
        return "before any AWS call"
    n = int(point)
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n, "th")
    return f"after its {n}{suffix} write completed"


class CrashPlanner:
    """Per function, a seeded sequence of decisions: kill this invocation, and where."""

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        self.rate = check_rate("CRASH_RATE", rate)
        self.seed = seed
        self._randoms: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def plan(self, function: str) -> str | None:
        """None (let it run) or the crash point: '0'..'3' writes, or 'return'."""
        if self.rate <= 0:
            return None
        with self._lock:
            rng = self._randoms.get(function)
            if rng is None:
                rng = self._randoms[function] = random.Random(self.seed ^ zlib.crc32(function.encode()))
            if rng.random() >= self.rate:
                return None
            point = rng.randrange(CRASH_WRITE_POINTS + 2)
        return CRASH_AT_RETURN if point > CRASH_WRITE_POINTS else str(point)
