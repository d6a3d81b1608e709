"""`ScheduledFunction`: a Lambda function on an EventBridge schedule, with a retry policy and a
dead-letter queue (for events EventBridge could not deliver and invocations that failed) whose
depth alarms."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.aws_values import MAX_SQS_RETENTION_SECONDS
from awsblocks.core import Component
from awsblocks.functions.function import FunctionArgs, _declare_function, validate_function_args
from awsblocks.messaging.queue import Queue, QueueArgs, QueueRef, QueueSender


@dataclass(kw_only=True)
class ScheduledFunctionArgs(FunctionArgs):
    """Arguments of `ScheduledFunction` (plus every attribute of `FunctionArgs`).

    Attributes:
        schedule_expression: EventBridge schedule, "rate(5 minutes)" or "cron(0 * * * ? *)".
        alarm_topic_arn: SNS topic the dead-letter depth alarm notifies.
        retry_attempts: EventBridge delivery retries, 0 to 185. Default 2.
        maximum_event_age_seconds: Give up delivering an event after this long, 60 to 86400.
            Default 3600.
        event_input: Constant JSON input for every invocation. Default: the scheduled event itself.
        dead_letter_kms_key_arn: CMK for the dead-letter queue (must allow EventBridge).
            Default: the queue creates one.
    """

    schedule_expression: str
    alarm_topic_arn: pulumi.Input[str]
    retry_attempts: int = 2
    maximum_event_age_seconds: int = 3600
    event_input: Mapping[str, Any] | None = None
    dead_letter_kms_key_arn: pulumi.Input[str] | None = None


class ScheduledFunction(Component):
    """A Lambda function on an EventBridge schedule, with retries and a dead-letter queue.

    Events EventBridge cannot deliver (after `retry_attempts`) and invocations that still fail
    after Lambda's own two async retries both land in the DLQ, whose depth alarm notifies
    `alarm_topic_arn`. Outputs: `function_name`, `function_arn`, `role_arn`, `log_group_name`,
    `rule_arn`, `dead_letter_url`. Python helper: `dead_letter` (the DLQ's `QueueRef`).
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    rule_arn: pulumi.Output[str]
    dead_letter_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ScheduledFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_function_args("ScheduledFunction", name, args)
        where = f"ScheduledFunction {name}"
        if not re.fullmatch(r"(rate|cron)\(.+\)", args.schedule_expression):
            raise ValueError(
                f"{where}: schedule_expression={args.schedule_expression!r}; "
                "allowed: 'rate(...)' or 'cron(...)'"
            )
        if not 0 <= args.retry_attempts <= 185:
            raise ValueError(f"{where}: retry_attempts={args.retry_attempts}; allowed: 0 to 185")
        if not 60 <= args.maximum_event_age_seconds <= 86400:
            raise ValueError(
                f"{where}: maximum_event_age_seconds={args.maximum_event_age_seconds}; allowed: 60 to 86400"
            )
        super().__init__("ScheduledFunction", name, args.tags, opts, name_prefix=args.name_prefix)
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description=f"Runs function {name} on {args.schedule_expression}",
            schedule_expression=args.schedule_expression,
            state="ENABLED",
            tags=self.named_tags(f"{name}-schedule"),
            opts=self.child_opts(),
        )
        dead_letter = Queue(
            f"{name}-dlq",
            QueueArgs(
                alarm_topic_arn=args.alarm_topic_arn,
                dead_letter_queue=False,
                is_dead_letter_queue=True,
                message_retention_seconds=MAX_SQS_RETENTION_SECONDS,
                kms_key_arn=args.dead_letter_kms_key_arn,
                senders=[QueueSender("events", rule.arn, "Schedule")],
                tags=args.tags,
            ),
            opts=self.child_opts(),
        )
        declared = _declare_function(self, name, args, dead_letter=dead_letter.ref)
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=declared.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=self.child_opts(),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=declared.function.arn,
            input=json.dumps(args.event_input, sort_keys=True) if args.event_input is not None else None,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=args.retry_attempts,
                maximum_event_age_in_seconds=args.maximum_event_age_seconds,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter.arn),
            opts=self.child_opts(depends_on=[permission]),
        )
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.rule_arn = rule.arn
        self.dead_letter_url = dead_letter.url
        self._dead_letter = dead_letter.ref
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
                "rule_arn": rule.arn,
                "dead_letter_url": self.dead_letter_url,
            }
        )

    @property
    def dead_letter(self) -> QueueRef:
        """The dead-letter queue (undeliverable events, failed runs) as a consumer needs it."""
        return self._dead_letter


# --- email -----------------------------------------------------------------------------------
