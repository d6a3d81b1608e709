"""notifier: tell backers and creators what happened, by email (SES, plain text + HTML).

Trigger: SQS notifications (funding.goal_reached, funding.failed → the campaign's creator;
payment.declined / failed / cancelled / refunded → the backer). Out: SES SendEmail from
SES_SENDER. A stack with no sender configured (`crowdfunding:sesSender` unset: the committed dev
stack, until its owner verifies a domain) gives the function no SES_SENDER: each event is then
skipped with a log line and counted as NotificationsSkipped, and nothing is looked up or sent.

Recipients. User ids are Cognito `sub`s, not addresses. The address is, in order: the event's
`email` field (payment events carry the payment item's `email` when the API stored one); the
payment item's `email` / the campaign's `ownerEmail`; the Cognito user pool
(COGNITO_USER_POOL_ID, ListUsers filtered by sub) when configured. When none is known the email
is skipped, logged with the reason, and counted as NotificationsSkipped: never guessed, never
sent to an invented address.

One email per event: sending is idempotent on eventId (Powertools idempotency), and derived
events keep their eventId when re-published.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.shared import aws
from lambdas.shared.batch import consume
from lambdas.shared.campaigns import amount_of, get_campaign
from lambdas.shared.config import env_optional, require_environment
from lambdas.shared.contract import (
    ENV_COGNITO_USER_POOL_ID,
    ENV_SES_SENDER,
    EventType,
    Metric,
)
from lambdas.shared.idempotency import run_once
from lambdas.shared.payments import get_payment
from lambdas.shared.telemetry import count, function_logger, function_metrics
from lambdas.shared.templates import CREATOR, TEMPLATES, money, render
from lambdas.specs.notifier import SPEC

require_environment(SPEC.environment, function=SPEC.name)

logger = function_logger(SPEC.name)
metrics = function_metrics(SPEC.name)


def _cognito_email(user_id: str | None) -> str | None:
    """The user's email from the user pool, looked up by `sub`, when a pool is configured."""
    pool = env_optional(ENV_COGNITO_USER_POOL_ID)
    if not pool or not user_id or '"' in user_id:
        return None
    response = aws.client("cognito-idp").list_users(
        UserPoolId=pool, Filter=f'sub = "{user_id}"', Limit=1, AttributesToGet=["email"]
    )
    for user in response.get("Users", []):
        for attribute in user.get("Attributes", []):
            if attribute.get("Name") == "email" and attribute.get("Value"):
                return str(attribute["Value"])
    return None


def recipient(
    event: dict[str, Any], campaign: dict[str, Any] | None, audience: str
) -> tuple[str | None, str | None]:
    """(user id, email address or None) of who should hear about `event`."""
    if audience == CREATOR:
        user_id = campaign.get("ownerId") if campaign else None
        email = campaign.get("ownerEmail") if campaign else None
    else:
        user_id = event.get("userId")
        email = event.get("email")
        if not email:
            payment = get_payment(event["paymentId"])
            email = payment.get("email") if payment else None
            user_id = user_id or (payment.get("userId") if payment else None)
    return user_id, email or _cognito_email(user_id)


def _notify(data: dict[str, Any]) -> dict[str, Any]:
    """Send the email for one event (runs once per eventId)."""
    event = data
    template = TEMPLATES[EventType(event["type"])]
    sender = env_optional(ENV_SES_SENDER)
    if not sender:
        logger.warning(
            "no sender configured (crowdfunding:sesSender unset); notification skipped",
            extra={"audience": template.audience, "eventType": event["type"]},
        )
        count(metrics, Metric.NOTIFICATIONS_SKIPPED)
        return {"sent": False, "reason": "no sender"}
    campaign = get_campaign(event["fundingId"])
    user_id, address = recipient(event, campaign, template.audience)
    if not address:
        logger.warning(
            "no email address known for the recipient; notification skipped",
            extra={"audience": template.audience, "userId": user_id},
        )
        count(metrics, Metric.NOTIFICATIONS_SKIPPED)
        return {"sent": False, "reason": "no address"}
    fields = {
        "title": str(campaign.get("title") or "your campaign") if campaign else "a campaign",
        "amount": money(event.get("amount")),
        "fundingAmount": money(amount_of(campaign, "fundingAmount") if campaign else event.get("amount")),
        "goalAmount": money(campaign.get("goalAmount") if campaign else event.get("goalAmount")),
        "reason": str(event.get("reason") or "no reason given").replace("_", " "),
    }
    subject, text, body_html = render(template, fields)
    response = aws.client("ses").send_email(
        Source=sender,
        Destination={"ToAddresses": [address]},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {
                "Text": {"Data": text, "Charset": "UTF-8"},
                "Html": {"Data": body_html, "Charset": "UTF-8"},
            },
        },
    )
    count(metrics, Metric.NOTIFICATIONS_SENT)
    logger.info("notification sent", extra={"audience": template.audience, "userId": user_id})
    return {"sent": True, "messageId": response.get("MessageId")}


def _process(event: dict[str, Any], record: SQSRecord, context: Any) -> None:
    run_once(SPEC.name, _notify, event, key="eventId", context=context)


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of notifiable events → partial batch response."""
    return consume(
        event,
        context,
        lambda parsed, record: _process(parsed, record, context),
        accepted=set(TEMPLATES),
        logger=logger,
        metrics=metrics,
    )
