"""A small event pipeline built from the reusable components, for report tests.

Two topics, a filtered and an unfiltered queue (each with its DLQ), two queue consumers with
table and topic grants, a function one consumer invokes, a scheduled function: every kind of
edge the diagram and the estimate read, with nothing from this product's own stack.
"""

from __future__ import annotations

from pathlib import Path

from awsblocks.data.table import Table, TableArgs
from awsblocks.functions.function import Function, FunctionArgs
from awsblocks.functions.queue_function import QueueFunction, QueueFunctionArgs
from awsblocks.functions.scheduled_function import ScheduledFunction, ScheduledFunctionArgs
from awsblocks.messaging.queue import Queue, QueueArgs
from awsblocks.messaging.subscription import TopicFeed
from awsblocks.messaging.topic import Topic, TopicArgs
from awsblocks.security import iam

CODE = str(Path(__file__).resolve().parent)
"""Any directory works as a function package under the mocks."""


def pipeline() -> None:
    """Declare the pipeline (call inside `synth(program=...)`)."""
    alerts = Topic("alerts", TopicArgs(publisher_services=["cloudwatch"]))
    orders = Topic("orders", TopicArgs())
    shipping = Queue(
        "shipping",
        QueueArgs(
            alarm_topic_arn=alerts.arn,
            visibility_timeout_seconds=180,
            subscriptions=[TopicFeed(orders.arn, {"type": ["order.paid", "order.cancelled"]})],
        ),
    )
    audit = Queue(
        "audit",
        QueueArgs(
            alarm_topic_arn=alerts.arn, visibility_timeout_seconds=180, subscriptions=[TopicFeed(orders.arn)]
        ),
    )
    shipments = Table("shipments", TableArgs(partition_key="orderId"))
    log = Table("audit-log", TableArgs(partition_key="eventId"))
    labels = Function("labels", FunctionArgs(code=CODE, handler="labels.handler", memory_mb=512))
    QueueFunction(
        "shipper",
        QueueFunctionArgs(
            queue=shipping,
            code=CODE,
            handler="shipper.handler",
            timeout_seconds=30,
            grants=[
                iam.dynamodb_read_write(shipments.arn, shipments.index_arns),
                iam.sns_publish(orders.arn),
                iam.lambda_invoke(labels.function_arn),
            ],
        ),
    )
    QueueFunction(
        "auditor",
        QueueFunctionArgs(
            queue=audit,
            code=CODE,
            handler="auditor.handler",
            timeout_seconds=30,
            grants=[iam.dynamodb_read_write(log.arn, log.index_arns)],
        ),
    )
    ScheduledFunction(
        "sweeper",
        ScheduledFunctionArgs(
            code=CODE,
            handler="sweeper.handler",
            schedule_expression="rate(5 minutes)",
            alarm_topic_arn=alerts.arn,
            grants=[iam.dynamodb_read(shipments.arn, shipments.index_arns)],
        ),
    )
