"""`QueueFunction`: a Lambda function consuming an SQS queue with partial batch failures.

The event source mapping reports batch item failures (`ReportBatchItemFailures`), so one bad
message is retried alone. The role adds consuming its queue to the grants you declare. It refuses
a queue whose visibility timeout is below 6 x the function timeout (AWS guidance).

Example::

    QueueFunction("shipper", QueueFunctionArgs(
        queue=shipping, code="build/shipper.zip", handler="shipper.handler", timeout_seconds=30,
        grants=[iam.dynamodb_read_write(table.arn, table.index_arns), iam.sns_publish(orders.arn),
                iam.kms_use([table.kms_key_arn, orders.kms_key_arn])]))
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component
from awsblocks.functions.function import FunctionArgs, _declare_function, validate_function_args
from awsblocks.messaging.queue import Queue, QueueRef

VISIBILITY_TO_TIMEOUT_RATIO = 6
"""AWS guidance: a queue's visibility timeout is at least 6 x its consumer's timeout, so a
message is not redelivered while a (retried) invocation still holds it."""


@dataclass(kw_only=True)
class QueueFunctionArgs(FunctionArgs):
    """Arguments of `QueueFunction` (plus every attribute of `FunctionArgs`).

    Attributes:
        queue: The queue consumed: a `Queue` (its main queue) or a `QueueRef` (e.g. `queue.dead_letter`).
            Its visibility timeout must be ≥ 6 x `timeout_seconds`.
        batch_size: Records per invocation, 1 to 10000 (above 10 needs a batching window). Default 10.
        batching_window_seconds: Wait up to this long to fill a batch, 0 to 300. Default 0.
        maximum_concurrency: Cap on concurrent invocations from this queue, 2 to 1000. Default none
            (up to the account's concurrency).
    """

    queue: Queue | QueueRef
    batch_size: int = 10
    batching_window_seconds: int = 0
    maximum_concurrency: int | None = None


def validate_queue_function_args(name: str, args: QueueFunctionArgs) -> None:
    """The checks of `validate_function_args` plus the event source mapping's."""
    validate_function_args("QueueFunction", name, args)
    where = f"QueueFunction {name}"
    if not 1 <= args.batch_size <= 10000:
        raise ValueError(f"{where}: batch_size={args.batch_size}; allowed: 1 to 10000")
    if not 0 <= args.batching_window_seconds <= 300:
        raise ValueError(
            f"{where}: batching_window_seconds={args.batching_window_seconds}; allowed: 0 to 300"
        )
    if args.batch_size > 10 and args.batching_window_seconds < 1:
        raise ValueError(
            f"{where}: batch_size={args.batch_size} with batching_window_seconds=0; allowed: a batching "
            "window of at least 1 second for batches above 10"
        )
    if args.maximum_concurrency is not None and not 2 <= args.maximum_concurrency <= 1000:
        raise ValueError(
            f"{where}: maximum_concurrency={args.maximum_concurrency}; allowed: 2 to 1000, or None"
        )
    if (
        args.reserved_concurrency is not None
        and args.maximum_concurrency is not None
        and args.reserved_concurrency < args.maximum_concurrency
    ):
        raise ValueError(
            f"{where}: reserved_concurrency={args.reserved_concurrency} is below maximum_concurrency="
            f"{args.maximum_concurrency}, so the mapping's pollers would be throttled and messages "
            "redelivered; allowed: reserved_concurrency >= maximum_concurrency "
            "(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html)"
        )
    visibility = args.queue.visibility_timeout_seconds
    needed = VISIBILITY_TO_TIMEOUT_RATIO * args.timeout_seconds
    if visibility < needed:
        raise ValueError(
            f"{where}: the queue's visibility timeout is {visibility} s, below "
            f"{VISIBILITY_TO_TIMEOUT_RATIO} x timeout_seconds ({args.timeout_seconds} s) = {needed} s; "
            f"allowed: a queue visibility timeout of at least {needed} s (raise the queue's "
            "visibility_timeout_seconds or lower timeout_seconds)"
        )


class QueueFunction(Component):
    """A Lambda function consuming one SQS queue with partial batch failures.

    Outputs: `function_name`, `function_arn`, `role_arn`, `log_group_name`.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: QueueFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate_queue_function_args(name, args)
        super().__init__("QueueFunction", name, args.tags, opts, name_prefix=args.name_prefix)
        queue = args.queue.ref if isinstance(args.queue, Queue) else args.queue
        declared = _declare_function(self, name, args, consumed=queue)
        aws.lambda_.EventSourceMapping(
            f"{name}-source",
            event_source_arn=queue.arn,
            function_name=declared.function.arn,
            batch_size=args.batch_size,
            maximum_batching_window_in_seconds=args.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=args.maximum_concurrency
            )
            if args.maximum_concurrency is not None
            else None,
            tags=self.named_tags(f"{name}-source"),
            opts=self.child_opts(depends_on=[declared.policy]),
        )
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
            }
        )
