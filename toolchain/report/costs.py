"""Cost arithmetic: plain functions of quantities and prices, tested against hand-computed figures.

Nothing here reads the stack: `toolchain.report.estimate` turns synthesized resources into
quantities, these functions turn quantities into monthly dollars. A month is 730 hours
(AWS's own convention on its pricing pages).
"""

from __future__ import annotations

import math
import re

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60

FARGATE_CPU_UNITS_PER_VCPU = 1024
MIB_PER_GB = 1024


def billable(quantity: float, free: float = 0.0) -> float:
    """The part of `quantity` above a free allowance (never negative)."""
    return max(0.0, quantity - free)


def monthly_cost(quantity: float, unit_price: float, free: float = 0.0) -> float:
    """Quantity above the free allowance times the unit price, in dollars."""
    if quantity < 0 or unit_price < 0:
        raise ValueError(f"quantity ({quantity}) and unit price ({unit_price}) must be >= 0")
    return billable(quantity, free) * unit_price


def always_on_hours(count: float, hours: float = HOURS_PER_MONTH) -> float:
    """Resource-hours of `count` resources that run the whole month (NAT gateways, IPs, endpoints)."""
    return count * hours


def fargate_hours(
    cpu_units: int, memory_mib: int, tasks: float, hours: float = HOURS_PER_MONTH
) -> tuple[float, float]:
    """(vCPU-hours, GB-hours) for `tasks` copies of a task size running all month.

    `cpu_units` and `memory_mib` are the task definition's `cpu` (1024 = 1 vCPU) and `memory`.
    """
    vcpu = cpu_units / FARGATE_CPU_UNITS_PER_VCPU
    gb = memory_mib / MIB_PER_GB
    return vcpu * tasks * hours, gb * tasks * hours


def split_capacity(tasks: int, strategy: list[tuple[str, int, int]]) -> dict[str, float]:
    """How `tasks` spread over capacity providers: [(provider, weight, base)] as ECS places them.

    The `base` tasks go to their provider first; the rest split by weight. An empty strategy
    means plain FARGATE (launch type).
    """
    if not strategy:
        return {"FARGATE": float(tasks)}
    placed: dict[str, float] = {name: 0.0 for name, _w, _b in strategy}
    remaining = float(tasks)
    for name, _weight, base in strategy:
        take = min(remaining, float(base))
        placed[name] += take
        remaining -= take
    total_weight = sum(weight for _n, weight, _b in strategy)
    if remaining > 0 and total_weight > 0:
        for name, weight, _base in strategy:
            placed[name] += remaining * weight / total_weight
    return placed


def lambda_gb_seconds(invocations: float, memory_mb: int, duration_ms: float) -> float:
    """GB-seconds of `invocations` at `memory_mb` lasting `duration_ms` each (billed per ms)."""
    return invocations * (memory_mb / 1024) * (duration_ms / 1000)


def per_million(count: float) -> float:
    """A request count in millions (the unit of SQS, SNS, Lambda and WAF request prices)."""
    return count / 1_000_000


def alb_lcus(
    requests: float,
    kb_per_request: float,
    hours: float = HOURS_PER_MONTH,
    rule_evaluations_per_request: float = 1.0,
) -> float:
    """LCU-hours of an ALB serving `requests` evenly over the month.

    An LCU is the largest of: 25 new connections/s, 3,000 active connections/min, 1 GB/hour
    processed (EC2/IP targets), 1,000 rule evaluations/s (the first 10 rules are free, so
    this counts one evaluation per request beyond them only when asked to). Each request is
    taken as a new connection lasting under a minute.
    """
    if hours <= 0:
        return 0.0
    per_second = requests / (hours * 3600)
    new_connections = per_second / 25
    active = (per_second * 60) / 3000
    gb_per_hour = (requests * kb_per_request / 1_000_000) / hours
    rules = per_second * max(0.0, rule_evaluations_per_request - 1.0) / 1000
    return max(new_connections, active, gb_per_hour, rules) * hours


def gigabytes(count: float, bytes_each: float) -> float:
    """`count` items of `bytes_each` bytes, in GB (10^9 bytes, as AWS bills data)."""
    return count * bytes_each / 1_000_000_000


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


_DAY_NAMES = {"SUN": "1", "MON": "2", "TUE": "3", "WED": "4", "THU": "5", "FRI": "6", "SAT": "7"}


def _cron_field_count(field: str, low: int, high: int) -> int:
    """How many values a cron field matches (`*`, `a`, `a,b`, `a-b`, `*/n`, `a/n`, day names)."""
    for day, number in _DAY_NAMES.items():
        field = field.upper().replace(day, number)
    if field in ("*", "?"):
        return high - low + 1
    total = 0
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if step > 1 else start
        total += len(range(start, end + 1, step))
    return total


def schedule_runs_per_month(expression: str, hours: float = HOURS_PER_MONTH) -> float:
    """How often an EventBridge schedule fires in a month: `rate(...)`, or `cron(...)` by its
    minute and hour fields (day-of-month/week fields are taken as every day unless they name
    specific days of the week, which scale the count by days/7)."""
    text = expression.strip()
    match = _RATE.match(text)
    if match:
        value = int(match[1])
        unit = match[2].rstrip("s")
        minutes = value * {"minute": 1, "hour": 60, "day": 1440}[unit]
        return hours * 60 / minutes
    match = _CRON.match(text)
    if match:
        fields = match[1].split()
        if len(fields) != 6:
            raise ValueError(f"cron expression {expression!r} must have 6 fields")
        minute, hour, _dom, _month, dow, _year = fields
        per_day = _cron_field_count(minute, 0, 59) * _cron_field_count(hour, 0, 23)
        days = hours / 24
        if dow not in ("*", "?"):
            days = days * _cron_field_count(dow.replace("L", "").split("#")[0] or "*", 1, 7) / 7
        return per_day * days
    if text.startswith("at("):
        return 1.0
    raise ValueError(f"unrecognised schedule expression {expression!r}; expected rate(...) or cron(...)")


def sqs_idle_polls(
    mappings: int, pollers: int = 5, wait_seconds: int = 20, hours: float = HOURS_PER_MONTH
) -> float:
    """ReceiveMessage calls Lambda's SQS pollers make on empty queues in a month.

    Each event source mapping keeps `pollers` long-polling connections open; each returns
    after `wait_seconds` when the queue is empty and is immediately reissued.
    """
    return mappings * pollers * (hours * 3600 / wait_seconds)


def round_money(value: float) -> float:
    """Dollars to the cent, rounding half up (how the report prints)."""
    return math.floor(value * 100 + 0.5) / 100
