"""Every function's spec, in declaration order, and what follows from them as a whole.

The infrastructure (`infra/payment_chain.py`), the local runtime's checks and the tests read the
functions from here. Not shipped in any archive: a handler imports only its own spec module.
Imports the spec modules and `lambdas.shared.contract` (standard library only), never a handler.
"""

from __future__ import annotations

from lambdas.shared import contract
from lambdas.specs import (
    books_auditor,
    campaign_closer,
    funding_update,
    ledger_recorder,
    notifier,
    payment_processor,
    payment_retry,
    pg_gateway,
    reconciler,
    transaction_check,
)
from lambdas.specs.model import DeadLetters, FunctionSpec, Schedule, SpecError, TopicQueue

SPECS: tuple[FunctionSpec, ...] = (
    pg_gateway.SPEC,
    payment_processor.SPEC,
    payment_retry.SPEC,
    funding_update.SPEC,
    transaction_check.SPEC,
    ledger_recorder.SPEC,
    notifier.SPEC,
    campaign_closer.SPEC,
    reconciler.SPEC,
    books_auditor.SPEC,
)
"""Every function, in the order the stack declares them (a new function: add its module here)."""


def all_specs() -> tuple[FunctionSpec, ...]:
    """Every function's spec in a stable order, after checking they agree with each other."""
    problems = catalog_problems(SPECS)
    if problems:
        raise SpecError("the function specs disagree:\n" + "\n".join(f"  - {p}" for p in problems))
    return SPECS


def function_names() -> tuple[str, ...]:
    """Every function's name (its handler module `lambdas/<name>.py`), in declaration order."""
    return tuple(spec.name for spec in all_specs())


def spec_of(name: str) -> FunctionSpec:
    """The spec of function `name`; a ValueError naming the known functions otherwise."""
    for spec in all_specs():
        if spec.name == name:
            return spec
    raise ValueError(f"unknown function {name!r}; expected one of {', '.join(function_names())}")


def queue_consumers() -> tuple[tuple[FunctionSpec, TopicQueue], ...]:
    """The topic-fed queues' consumers and their triggers, in declaration order."""
    return tuple((spec, spec.trigger) for spec in all_specs() if isinstance(spec.trigger, TopicQueue))


def consumers_of(event: contract.EventType) -> tuple[str, ...]:
    """The functions whose queue receives `event`."""
    return tuple(spec.name for spec, trigger in queue_consumers() if event in trigger.events)


def subscribed_topics(trigger: TopicQueue) -> tuple[contract.Topic, ...]:
    """The topics a consumer's queue subscribes to, in the order its events first name them."""
    seen: list[contract.Topic] = []
    for event in trigger.events:
        topic = contract.TOPIC_OF_EVENT[contract.EventType(event)]
        if topic not in seen:
            seen.append(topic)
    return tuple(seen)


def events_on(trigger: TopicQueue, topic: contract.Topic) -> tuple[contract.EventType, ...]:
    """The consumer's events published on `topic` (its subscription's filter)."""
    return tuple(
        contract.EventType(e)
        for e in trigger.events
        if contract.TOPIC_OF_EVENT[contract.EventType(e)] is topic
    )


def catalog_problems(specs: tuple[FunctionSpec, ...]) -> list[str]:
    """What is wrong between specs (each spec has checked its own values when it was built)."""
    problems: list[str] = []
    names = [spec.name for spec in specs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"function {name} has more than one spec; fix: keep one in lambdas/specs/{name}.py")
    known_events = {str(event) for event in contract.EventType}
    queues: dict[str, str] = {}
    for spec in specs:
        trigger = spec.trigger
        if not isinstance(trigger, TopicQueue):
            continue
        unknown = [event for event in trigger.events if str(event) not in known_events]
        if unknown:
            problems.append(
                f"function {spec.name}: TopicQueue({trigger.queue!r}) names unknown event(s) "
                f"{', '.join(map(repr, unknown))}; fix: use contract.EventType members in {spec.path} "
                f"(allowed: {', '.join(sorted(known_events))})"
            )
        if trigger.queue in queues:
            problems.append(
                f"function {spec.name}: queue {trigger.queue!r} is already consumed by "
                f"{queues[trigger.queue]}; fix: give {spec.path} its own queue name"
            )
        queues.setdefault(trigger.queue, spec.name)
    for spec in specs:
        if isinstance(spec.trigger, DeadLetters) and spec.trigger.source_queue not in queues:
            problems.append(
                f"function {spec.name}: DeadLetters({spec.trigger.source_queue!r}) names a queue no "
                f"function consumes, so it has no dead-letter queue; fix: in {spec.path} one of: "
                f"{', '.join(sorted(queues))}"
            )
    return problems


def schedule_of(spec: FunctionSpec) -> str:
    """The schedule expression of a scheduled function (a ValueError naming the fix otherwise)."""
    if not isinstance(spec.trigger, Schedule):
        raise ValueError(
            f"function {spec.name} is triggered by {type(spec.trigger).__name__}, not a Schedule; "
            f"fix: a Schedule trigger in {spec.path}, or read another function's schedule"
        )
    return spec.trigger.expression
