"""Email templates (plain text + HTML) for the notifier, one per event type it handles."""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template
from typing import Any

from lambdas.shared.contract import EventType

BACKER = "backer"
CREATOR = "creator"


@dataclass(frozen=True)
class EmailTemplate:
    """Who receives it, and the subject/text/HTML with $placeholders."""

    audience: str
    subject: str
    text: str
    html: str


_FOOTER_TEXT = "\n\n-- \nYou receive this because of your activity on the crowdfunding platform."
_FOOTER_HTML = (
    "<p style='color:#777;font-size:12px'>"
    "You receive this because of your activity on the crowdfunding platform.</p>"
)


def _t(audience: str, subject: str, lines: list[str]) -> EmailTemplate:
    text = "\n\n".join(lines) + _FOOTER_TEXT
    body = "".join(f"<p>{line}</p>" for line in lines)
    return EmailTemplate(audience, subject, text, f"<html><body>{body}{_FOOTER_HTML}</body></html>")


TEMPLATES: dict[EventType, EmailTemplate] = {
    EventType.FUNDING_GOAL_REACHED: _t(
        CREATOR,
        'Your campaign "$title" reached its goal',
        [
            'Congratulations! "$title" has raised $fundingAmount of its $goalAmount goal.',
            "The campaign is now closed as successful.",
        ],
    ),
    EventType.FUNDING_FAILED: _t(
        CREATOR,
        'Your campaign "$title" ended without reaching its goal',
        [
            '"$title" raised $fundingAmount of its $goalAmount goal by its deadline.',
            "Every backer is being refunded.",
        ],
    ),
    EventType.PAYMENT_DECLINED: _t(
        BACKER,
        'Your payment to "$title" was declined',
        [
            'Your payment of $amount to "$title" was declined by the payment provider ($reason).',
            "No money was taken. You may try again with another payment method.",
        ],
    ),
    EventType.PAYMENT_FAILED: _t(
        BACKER,
        'Your payment to "$title" could not be processed',
        [
            'We could not process your payment of $amount to "$title" ($reason).',
            "No money was taken. Please try again later.",
        ],
    ),
    EventType.PAYMENT_CANCELLED: _t(
        BACKER,
        'Your payment to "$title" was cancelled',
        [
            'Your payment of $amount to "$title" was cancelled: $reason.',
            "The authorization on your payment method has been released.",
        ],
    ),
    EventType.PAYMENT_REFUNDED: _t(
        BACKER,
        'Your payment to "$title" was refunded',
        ['Your payment of $amount to "$title" has been refunded: $reason.'],
    ),
}


def money(value: Any) -> str:
    """An amount in the smallest currency unit (KRW has no minor unit) for humans."""
    return f"{int(value):,} KRW" if isinstance(value, int | float) else "an amount"


def render(template: EmailTemplate, fields: dict[str, str]) -> tuple[str, str, str]:
    """(subject, text, html); values are HTML-escaped in the HTML part only."""
    escaped = {k: html.escape(v) for k, v in fields.items()}
    return (
        Template(template.subject).safe_substitute(fields),
        Template(template.text).safe_substitute(fields),
        Template(template.html).safe_substitute(escaped),
    )
