"""Publishing `payment.requested` to the payments topic, with the contract's envelope and attributes."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared import contract
from lambdas.shared.contract import EventType

logger = logging.getLogger(__name__)


class PaymentEventPublisher:
    """Publishes payment requests; a failure is reported, never raised (the reconciler re-publishes)."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish_payment_requested(self, payment: dict[str, Any]) -> bool:
        """Publish the event for a stored PENDING payment; True when SNS accepted it."""
        event = contract.make_event(
            EventType.PAYMENT_REQUESTED,
            payment_id=payment["paymentId"],
            funding_id=payment["fundingId"],
            user_id=payment["userId"],
            amount=payment["amount"],
            paymentMethod=payment["paymentMethod"],
        )
        try:
            self._sns.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(event, separators=(",", ":")),
                MessageAttributes=contract.message_attributes(event),
            )
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            logger.warning(
                "payment.requested not published; the reconciler will re-publish it",
                extra={"paymentId": payment["paymentId"], "errorType": type(exc).__name__, "errorCode": code},
            )
            return False
        return True
