"""Request and response shapes: strict where money and dates are concerned, camelCase on the wire.

Request models forbid unknown fields and never coerce: an amount must be a JSON integer (not a bool, a
float or a numeric string), a date must be an ISO 8601 string with a timezone. Cross-field rules are
field validators over the fields declared before them, so each error names the field and the rule.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from lambdas.shared.contract import CampaignState, PaymentState

MAX_AMOUNT = 10**15
"""Upper bound of any amount, in the smallest currency unit: far above any real campaign, far below
what a DynamoDB number or a JSON double can hold."""
MAX_DURATION_DAYS = 366
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2100, 1, 1, tzinfo=UTC)
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
"""Campaign and payment ids: what the API generates (UUIDs) and a little more, always a valid key."""


def to_iso_utc(moment: datetime) -> str:
    """The storage format of every timestamp: UTC, milliseconds, `Z` (string order = time order)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require_iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time string")
    if len(value) > 40:
        raise PydanticCustomError("datetime_too_long", "Input should be an ISO 8601 date-time string")
    return value


def _normalize_to_utc(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST_DATE - timedelta(days=1)
    if not EARLIEST_DATE <= moment < LATEST_DATE:
        raise PydanticCustomError(
            "datetime_out_of_range", "Input should be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z"
        )
    return moment


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
"""Unicode categories that draw nothing on their own: controls, format characters (zero-width
space, joiners, bidi marks), private use, unassigned, separators and combining marks."""
_INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that render as blanks: the Hangul fillers and the blank Braille pattern."""
_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")


def is_visible(character: str) -> bool:
    """True when the character draws something: what a reader can actually see."""
    return (
        unicodedata.category(character) not in _INVISIBLE_CATEGORIES
        and character not in _INVISIBLE_CHARACTERS
    )


def _encodable_and_not_blank(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("string_unicode", "Input should be valid Unicode text") from None
    if not any(is_visible(character) for character in value):
        raise PydanticCustomError(
            "string_blank",
            "Input should contain a visible character (not only spaces, control or invisible characters)",
        )
    return value


def _refuse_controls(value: str, allowed: frozenset[str], where: str) -> str:
    """Control characters (NUL, ESC, DEL, C1…) have no place in text a page shows to people."""
    for position, character in enumerate(value):
        if unicodedata.category(character) == "Cc" and character not in allowed:
            raise PydanticCustomError(
                "string_control_characters",
                "Input should contain no control characters {where} "
                "(found U+{code:04X} at position {position})",
                {"where": where, "code": ord(character), "position": position},
            )
    return value


def _single_line_text(value: str) -> str:
    return _refuse_controls(value, frozenset(), "(a title is one line of text)")


def _multi_line_text(value: str) -> str:
    return _refuse_controls(value, _LINE_BREAKS_AND_TABS, "other than tabs and line breaks")


def _printable(value: str) -> str:
    """A payment method is a short label: every character printable (ordinary spaces allowed)."""
    for position, character in enumerate(value):
        if not character.isprintable():
            raise PydanticCustomError(
                "string_not_printable",
                "Input should contain only printable characters (found U+{code:04X} at position "
                '{position}); e.g. "credit card"',
                {"code": ord(character), "position": position},
            )
    return value


def _must_be_one(value: int) -> int:
    if value != 1:
        raise PydanticCustomError("envelope_status", "Input should be 1, the request envelope's version")
    return value


UtcDateTime = Annotated[
    AwareDatetime, BeforeValidator(_require_iso_string), AfterValidator(_normalize_to_utc)
]
"""Any ISO 8601 date-time with a timezone, normalized to UTC; naive values are rejected."""
Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT)]
Title = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_encodable_and_not_blank),
    AfterValidator(_single_line_text),
]
Description = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=5000),
    AfterValidator(_encodable_and_not_blank),
    AfterValidator(_multi_line_text),
]
ResourceId = Annotated[StrictStr, StringConstraints(pattern=ID_PATTERN)]
PAYMENT_METHOD_MAX_LENGTH = 64
PaymentMethod = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=PAYMENT_METHOD_MAX_LENGTH),
    AfterValidator(_printable),
    AfterValidator(_encodable_and_not_blank),
    Field(
        examples=["credit card"],
        description="Free text as the client names it (DESIGN §2): 1 to 64 printable characters.",
    ),
]


def _client_status(value: Any) -> str | int:
    if isinstance(value, str):
        if len(value) > 64:
            raise PydanticCustomError("string_too_long", "String should have at most 64 characters")
        return _encodable_and_not_blank(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**31:
            raise PydanticCustomError("less_than", "Integer should be a 32-bit signed number")
        return value
    raise PydanticCustomError("client_status_type", "Input should be a string or an integer")


ClientStatus = Annotated[
    str | int,
    PlainValidator(_client_status),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 64},
                {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
            ]
        }
    ),
]
"""The client's own `status` field (DESIGN §2): a short string or a 32-bit integer, stored as given."""
EnvelopeVersion = Annotated[
    StrictInt, AfterValidator(_must_be_one), WithJsonSchema({"type": "integer", "const": 1})
]
StoredTimestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class _RequestBody(BaseModel):
    """Strict JSON bodies: camelCase names only, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, serialize_by_alias=True)


class CampaignInput(_RequestBody):
    """What a creator sends to create or replace a campaign. Field order matters: later validators
    compare against earlier fields (only when those were valid themselves)."""

    title: Title
    description: Description
    goal_amount: Amount
    min_amount: Amount = Field(description="Smallest accepted payment.")
    max_amount: Amount = Field(description="Largest accepted payment; at least minAmount.")
    start_date: UtcDateTime
    end_date: UtcDateTime = Field(description="After startDate and in the future.")
    duration: StrictInt = Field(
        ge=1,
        le=MAX_DURATION_DAYS,
        description="Length in whole days: the span from startDate to endDate rounded up to a day.",
    )
    status: ClientStatus | None = Field(
        default=None, description="The client's own status field, stored as given."
    )
    funding_amount: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_AMOUNT,
        description="Ignored: the total is the sum of captured payments and starts at 0.",
    )

    @field_validator("max_amount")
    @classmethod
    def _max_not_below_min(cls, max_amount: int, info: ValidationInfo) -> int:
        min_amount = info.data.get("min_amount")
        if min_amount is not None and max_amount < min_amount:
            raise PydanticCustomError(
                "max_amount_below_min_amount",
                "maxAmount ({max_amount}) should be greater than or equal to minAmount ({min_amount})",
                {"max_amount": max_amount, "min_amount": min_amount},
            )
        return max_amount

    @field_validator("end_date")
    @classmethod
    def _end_after_start_and_in_future(cls, end_date: datetime, info: ValidationInfo) -> datetime:
        start_date = info.data.get("start_date")
        if start_date is not None and end_date <= start_date:
            raise PydanticCustomError("end_date_not_after_start_date", "endDate should be after startDate")
        if end_date <= datetime.now(UTC):
            raise PydanticCustomError("end_date_in_past", "endDate should be in the future")
        return end_date

    @field_validator("duration")
    @classmethod
    def _duration_matches_dates(cls, duration: int, info: ValidationInfo) -> int:
        start_date, end_date = info.data.get("start_date"), info.data.get("end_date")
        if start_date is not None and end_date is not None:
            expected = math.ceil((end_date - start_date) / timedelta(days=1))
            if duration != expected:
                raise PydanticCustomError(
                    "duration_mismatch",
                    "duration should be {expected} day(s): the span from startDate to endDate rounded up",
                    {"expected": expected},
                )
        return duration


class CampaignReplacement(CampaignInput):
    """PUT /api/funding/{fundingId}: the full campaign; a `fundingId` in the body must match the path."""

    funding_id: ResourceId | None = None


class CampaignReplacementWithId(CampaignInput):
    """PUT /api/funding: the full campaign and, in the body, which one."""

    funding_id: ResourceId


class PaymentDetails(_RequestBody):
    """The payment inside the request envelope."""

    funding_id: ResourceId
    amount: Amount
    payment_method: PaymentMethod


class PaymentRequest(_RequestBody):
    """POST /api/payments body: `{"status": 1, "payload": {...}}` as DESIGN §2 shows."""

    status: EnvelopeVersion
    payload: PaymentDetails


# --- responses -------------------------------------------------------------------------------


class _ResponseBody(BaseModel):
    """Responses: camelCase on the wire, tolerant of attributes other writers add to an item."""

    model_config = ConfigDict(
        extra="ignore", alias_generator=to_camel, serialize_by_alias=True, populate_by_name=True
    )


class Campaign(_ResponseBody):
    """A campaign as stored; `fundingAmount` is the sum of its captured payments."""

    funding_id: str
    owner_id: str
    title: str
    description: str
    goal_amount: int
    funding_amount: int
    min_amount: int
    max_amount: int
    duration: int
    start_date: StoredTimestamp
    end_date: StoredTimestamp
    status: str | int | None = None
    state: CampaignState
    created_at: StoredTimestamp
    updated_at: StoredTimestamp
    goal_reached_at: StoredTimestamp | None = None
    deleted_at: StoredTimestamp | None = None
    terms_frozen_at: StoredTimestamp | None = Field(
        default=None,
        description="When the campaign accepted its first payment: from then on goalAmount, minAmount, "
        "maxAmount, startDate and endDate cannot change.",
    )


class Payment(_ResponseBody):
    """A payment as its backer sees it; `capturedAt` is set once it is captured."""

    payment_id: str
    funding_id: str
    amount: int
    payment_method: str
    state: PaymentState
    created_at: StoredTimestamp
    updated_at: StoredTimestamp
    captured_at: StoredTimestamp | None = None


class AcceptedPayment(Payment):
    """A freshly accepted payment and whether its processing request reached the topic yet."""

    publication: Literal["published", "deferred"] = Field(
        description="`deferred`: the payment is stored as PENDING but the processing request could not "
        "be published now; the reconciler re-publishes it, nothing is lost."
    )
    message: str


class CampaignEnvelope(_ResponseBody):
    status: int = 200
    payload: Campaign


class CampaignPageEnvelope(_ResponseBody):
    status: int = 200
    payload: list[Campaign]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class CampaignCreatedEnvelope(_ResponseBody):
    status: int = 201
    payload: Literal["success"] = "success"
    funding_id: str


class CampaignUpdatedEnvelope(_ResponseBody):
    """PUT's answer: 201 and "success" as the seed's table says, the campaign as stored beside it."""

    status: int = 201
    payload: Literal["success"] = "success"
    funding_id: str
    funding: Campaign


class CampaignDeletedEnvelope(_ResponseBody):
    """DELETE's answer: 200 and "success" as the seed's table says, the (DELETED) campaign beside it."""

    status: int = 200
    payload: Literal["success"] = "success"
    funding_id: str
    funding: Campaign


class PaymentEnvelope(_ResponseBody):
    status: int = 200
    payload: Payment


class PaymentAcceptedEnvelope(_ResponseBody):
    status: int = 201
    payload: AcceptedPayment
    payment_id: str


class Health(_ResponseBody):
    status: Literal["ok"] = "ok"


class HealthEnvelope(_ResponseBody):
    status: int = 200
    payload: Health = Health()


class ErrorDetail(_ResponseBody):
    """One broken rule: where (`body`, `query`, `path`, `header`), which field, which rule."""

    location: str
    field: str
    rule: str
    message: str


class ErrorPayload(_ResponseBody):
    error: str = Field(description="Stable machine-readable code, e.g. validation_error.")
    message: str
    details: list[ErrorDetail] = []


class ErrorEnvelope(_ResponseBody):
    status: int
    payload: ErrorPayload
