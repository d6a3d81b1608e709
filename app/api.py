"""The HTTP operations of DESIGN §2: campaigns, payments and the load balancer's health check.

Handlers are plain `def`s: boto3 blocks, so FastAPI runs them in its thread pool and the event loop
stays free. Each operation declares every status it can answer with, so the OpenAPI document is the
complete contract (and schemathesis holds the service to it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from app.auth import Caller, TokenVerifier
from app.errors import ApiError, field_error
from app.events import PaymentEventPublisher
from app.idempotency import (
    KEY_PATTERN,
    REQUEST_HASH_ATTRIBUTE,
    IdempotentExecutor,
    Outcome,
    derived_resource_id,
    fingerprint,
    key_reused_error,
    same_request,
)
from app.models import (
    ID_PATTERN,
    AcceptedPayment,
    Campaign,
    CampaignCreatedEnvelope,
    CampaignDeletedEnvelope,
    CampaignEnvelope,
    CampaignInput,
    CampaignPageEnvelope,
    CampaignReplacement,
    CampaignReplacementWithId,
    CampaignUpdatedEnvelope,
    ErrorDetail,
    ErrorEnvelope,
    HealthEnvelope,
    Payment,
    PaymentAcceptedEnvelope,
    PaymentEnvelope,
    PaymentRequest,
    to_iso_utc,
)
from app.quotas import Quotas
from app.store import MONEY_TERMS, TERMS_FROZEN_AT, ConditionFailed, Item, Store
from lambdas.shared.campaigns import deadline
from lambdas.shared.contract import CampaignState, PaymentState, utc_now_iso

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON body.",
    401: "Missing, malformed, expired or foreign bearer token.",
    403: "Authenticated, but not the campaign's owner or the payment's backer.",
    404: "No such campaign or payment (a deleted campaign counts as absent for writes).",
    409: "Conflicts with the current state: campaign not open or past its endDate, money terms frozen "
    "by a payment, Idempotency-Key reused for another request or still in progress.",
    413: "Request body larger than the service accepts.",
    415: "Body sent with a content type other than application/json.",
    422: "A field or parameter breaks a rule; `details` names each field and rule.",
    429: "A per-user quota is reached (payments per minute, payments per campaign per day, campaigns "
    "per day); `Retry-After` says when to retry.",
    500: "Unexpected error (a bug); logged with the request id.",
    503: "A dependency (DynamoDB, the identity provider) is unavailable; retry later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error envelopes an operation can return."""
    return {code: {"model": ErrorEnvelope, "description": _STATUS_DESCRIPTIONS[code]} for code in codes}


_READ_ERRORS = (422, 500, 503)
_BODY_ERRORS = (400, 413, 415, 422)
_AUTH_ERRORS = (401,)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="Makes a retried POST return the first response instead of acting twice (kept a day).",
    ),
]
FundingIdPath = Annotated[str, Path(alias="fundingId", pattern=ID_PATTERN)]
PaymentIdPath = Annotated[str, Path(alias="paymentId", pattern=ID_PATTERN)]


@dataclass(frozen=True)
class Services:
    """Everything a request needs, built once per application."""

    store: Store
    publisher: PaymentEventPublisher
    verifier: TokenVerifier
    idempotency: IdempotentExecutor
    quotas: Quotas


def services(request: Request) -> Services:
    """The application's services (set by create_app)."""
    services_of_app: Services = request.app.state.services
    return services_of_app


_bearer = HTTPBearer(auto_error=False, description="A Cognito user-pool JWT: ID or access token.")


def current_caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    deps: Annotated[Services, Depends(services)],
) -> Caller:
    """The verified caller of a write (or of a backer-only read)."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "This operation needs an Authorization: Bearer <token> header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return deps.verifier.verify(credentials.credentials)


def json_body_required(request: Request) -> None:
    """Bodies are JSON only: any other content type is a 415, not a confusing validation error."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiError(415, "unsupported_media_type", "Send the request body as application/json")


CallerDep = Annotated[Caller, Depends(current_caller)]
ServicesDep = Annotated[Services, Depends(services)]

router = APIRouter()


def _envelope(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Serialize once with pydantic (the declared response_model documents the same shape)."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code, headers=headers)


def _campaign_location(funding_id: str) -> str:
    return f"/api/funding/{funding_id}"


def _not_found(what: str, field: str, location: str = "path") -> ApiError:
    return field_error(404, "not_found", field, "exists", f"No {what} with this {field}", location)


# --- health ------------------------------------------------------------------------------------


@router.get("/healthz", response_model=HealthEnvelope, tags=["health"], summary="Load-balancer health check")
async def healthz() -> JSONResponse:
    """Answers from memory: no table or topic is touched, so a DynamoDB blip never drains the targets."""
    return _envelope(HealthEnvelope())


# --- campaigns ---------------------------------------------------------------------------------


CAMPAIGN_REQUEST_FIELDS = (
    "title",
    "description",
    "goalAmount",
    "minAmount",
    "maxAmount",
    "duration",
    "startDate",
    "endDate",
    "status",
)
"""What a create request sets: compared when an old campaign (stored without a request hash) meets a
reused Idempotency-Key."""
PAYMENT_REQUEST_FIELDS = ("fundingId", "amount", "paymentMethod")


def _campaign_fields(body: CampaignInput) -> Item:
    """The client-settable attributes, in storage form (dates normalized to UTC `...Z`)."""
    fields: Item = {
        "title": body.title,
        "description": body.description,
        "goalAmount": body.goal_amount,
        "minAmount": body.min_amount,
        "maxAmount": body.max_amount,
        "duration": body.duration,
        "startDate": to_iso_utc(body.start_date),
        "endDate": to_iso_utc(body.end_date),
    }
    if body.status is not None:
        fields["status"] = body.status
    return fields


def _hash_of_keyed_request(route: str, body: Item, idempotency_key: str | None) -> Item:
    """The request hash a resource created under an Idempotency-Key stores (nothing without a key)."""
    return {REQUEST_HASH_ATTRIBUTE: fingerprint(route, body)} if idempotency_key else {}


@router.post(
    "/api/funding",
    status_code=201,
    response_model=CampaignCreatedEnvelope,
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 409, 429, 500, 503),
    tags=["campaigns"],
    summary="Create a campaign",
    description="Create an OPEN campaign owned by the caller; `fundingAmount` starts at 0 whatever was "
    "sent. Counted against the caller's campaigns-per-day quota (429 with Retry-After when reached).",
    dependencies=[Depends(json_body_required)],
)
def create_campaign(
    body: CampaignInput, caller: CallerDep, deps: ServicesDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    route = "POST /api/funding"
    request_body = body.model_dump(mode="json", exclude_unset=True)

    def create() -> Outcome:
        funding_id = derived_resource_id(caller.user_id, route, idempotency_key)
        deps.quotas.charge_campaign(caller.user_id)
        now = utc_now_iso()
        item = {
            "fundingId": funding_id,
            "ownerId": caller.user_id,
            **_campaign_fields(body),
            "fundingAmount": 0,
            "state": str(CampaignState.OPEN),
            "createdAt": now,
            "updatedAt": now,
            **_hash_of_keyed_request(route, request_body, idempotency_key),
        }
        try:
            deps.store.create_campaign(item)
        except ConditionFailed as exc:
            # Only a key-derived id can exist already: this key's earlier use got this far, maybe long
            # ago (its short-term record expired); the stored request hash tells whether it was this one.
            stored = exc.item
            if stored is None or stored.get("ownerId") != caller.user_id:
                raise ApiError(409, "conflict", "A campaign with this id already exists") from None
            if not same_request(stored, item.get(REQUEST_HASH_ATTRIBUTE, ""), item, CAMPAIGN_REQUEST_FIELDS):
                raise key_reused_error(f"campaign {funding_id}") from None
        logger.info("campaign created", extra={"fundingId": funding_id})
        envelope = CampaignCreatedEnvelope(funding_id=funding_id)
        return Outcome(201, envelope.model_dump(mode="json"), {"Location": _campaign_location(funding_id)})

    return deps.idempotency.run(
        user_id=caller.user_id, key=idempotency_key, route=route, body=request_body, operation=create
    )


@router.get(
    "/api/fundings",
    response_model=CampaignPageEnvelope,
    responses=errors(*_READ_ERRORS),
    tags=["campaigns"],
    summary="List campaigns",
)
def list_campaigns(
    deps: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="`nextCursor` of the previous page."),
    ] = None,
    state: Annotated[
        CampaignState | None,
        Query(description="Only campaigns in this state, soonest endDate first. Default: all but DELETED."),
    ] = None,
) -> JSONResponse:
    """A page of campaigns and the opaque cursor of the next page (null on the last)."""
    items, next_cursor = deps.store.list_campaigns(limit=limit, cursor=cursor, state=state)
    campaigns = [Campaign.model_validate(item) for item in items]
    return _envelope(CampaignPageEnvelope(payload=campaigns, next_cursor=next_cursor))


@router.get(
    "/api/funding/{fundingId}",
    response_model=CampaignEnvelope,
    responses=errors(404, *_READ_ERRORS),
    tags=["campaigns"],
    summary="Get a campaign",
)
def get_campaign(funding_id: FundingIdPath, deps: ServicesDep) -> JSONResponse:
    """One campaign; a soft-deleted one is still shown, with state DELETED and deletedAt."""
    item = deps.store.get_campaign(funding_id)
    if item is None:
        raise _not_found("campaign", "fundingId")
    return _envelope(CampaignEnvelope(payload=Campaign.model_validate(item)))


def deadline_passed(campaign: Item, now: datetime) -> bool:
    """DESIGN §2: nothing about a campaign changes, and no payment is accepted, once now > endDate
    (the functions' rule: a timestamp counts to that instant, a date-only endDate to the day's end)."""
    end_date = campaign.get("endDate")
    return isinstance(end_date, str) and now > deadline(end_date)


def _campaign_ended(campaign: Item, field: str, location: str) -> ApiError:
    return field_error(
        409,
        "campaign_ended",
        field,
        "campaign_not_ended",
        f"The campaign's endDate ({campaign.get('endDate')}) has passed: nothing about a campaign "
        "changes after its deadline, and it takes no more payments (it is closed as SUCCEEDED, or "
        "FAILED with its payments refunded)",
        location,
    )


def _explain_refused_campaign_write(
    stored: Item | None, caller: Caller, now: datetime, changes: Item | None = None
) -> ApiError:
    """Why a conditional PUT (with `changes`) or DELETE failed, from the item as it is now."""
    if stored is None or stored.get("state") == CampaignState.DELETED:
        return _not_found("campaign", "fundingId")
    if stored.get("ownerId") != caller.user_id:
        return ApiError(403, "forbidden", "Only the campaign's owner may change or delete it")
    if stored.get("state") != CampaignState.OPEN:
        return field_error(
            409,
            "campaign_not_open",
            "state",
            "campaign_open",
            f"The campaign is {stored.get('state')}; only OPEN campaigns can be changed",
            "resource",
        )
    if deadline_passed(stored, now):
        return _campaign_ended(stored, "endDate", "resource")
    if changes is not None and stored.get(TERMS_FROZEN_AT):
        changed = [term for term in MONEY_TERMS if stored.get(term) != changes[term]]
        if changed:
            message = (
                f"The campaign has accepted payments (since {stored[TERMS_FROZEN_AT]}), so its money terms "
                f"are frozen: {', '.join(changed)} cannot change. Backers paid on these terms "
                f"({', '.join(MONEY_TERMS)} stay as they were); title and description can still be edited"
            )
            return ApiError(
                409,
                "terms_frozen",
                message,
                [
                    ErrorDetail(location="body", field=term, rule="terms_frozen", message=message)
                    for term in changed
                ],
            )
    if changes is not None and changes["goalAmount"] <= stored.get("fundingAmount", 0):
        return field_error(
            409,
            "goal_already_reached",
            "goalAmount",
            "goal_above_funding_amount",
            f"goalAmount ({changes['goalAmount']}) should be greater than the amount already raised "
            f"({stored.get('fundingAmount', 0)})",
        )
    return ApiError(409, "conflict", "The campaign changed while this request was handled; read it and retry")


def _replace_campaign(funding_id: str, body: CampaignInput, caller: Caller, deps: Services) -> JSONResponse:
    now = datetime.now(UTC)
    changes = {**_campaign_fields(body), "updatedAt": to_iso_utc(now)}
    try:
        updated = deps.store.update_open_campaign(funding_id, caller.user_id, changes, to_iso_utc(now))
    except ConditionFailed as exc:
        stored = exc.item or deps.store.get_campaign(funding_id, consistent=True)
        raise _explain_refused_campaign_write(stored, caller, now, changes) from None
    logger.info("campaign updated", extra={"fundingId": funding_id})
    envelope = CampaignUpdatedEnvelope(funding_id=funding_id, funding=Campaign.model_validate(updated))
    return _envelope(envelope, 201)


_PUT_DOC = (
    "Replace an OPEN campaign's client-settable fields (owner only); answers 201 with payload "
    '"success" and the campaign as stored under `funding`. `fundingAmount` is ignored; `status`, when '
    "omitted, keeps its stored value. Refused with a 409 once the campaign's endDate has passed "
    "(`campaign_ended`: nothing about a campaign changes after its deadline). Once the campaign has "
    "accepted a payment (`termsFrozenAt`), goalAmount, minAmount, maxAmount, startDate and endDate "
    "must be sent unchanged (`terms_frozen`); before that, goalAmount must stay above the amount raised."
)


@router.put(
    "/api/funding",
    status_code=201,
    response_model=CampaignUpdatedEnvelope,
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 403, 404, 409, 500, 503),
    tags=["campaigns"],
    summary="Update a campaign (id in the body)",
    description=_PUT_DOC,
    dependencies=[Depends(json_body_required)],
)
def update_campaign(body: CampaignReplacementWithId, caller: CallerDep, deps: ServicesDep) -> JSONResponse:
    return _replace_campaign(body.funding_id, body, caller, deps)


@router.put(
    "/api/funding/{fundingId}",
    status_code=201,
    response_model=CampaignUpdatedEnvelope,
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 403, 404, 409, 500, 503),
    tags=["campaigns"],
    summary="Update a campaign (id in the path)",
    description=_PUT_DOC,
    dependencies=[Depends(json_body_required)],
)
def update_campaign_at(
    funding_id: FundingIdPath, body: CampaignReplacement, caller: CallerDep, deps: ServicesDep
) -> JSONResponse:
    if body.funding_id is not None and body.funding_id != funding_id:
        raise field_error(
            422,
            "validation_error",
            "fundingId",
            "matches_path",
            "fundingId in the body should match the path",
        )
    return _replace_campaign(funding_id, body, caller, deps)


@router.delete(
    "/api/fundings/{fundingId}",
    response_model=CampaignDeletedEnvelope,
    responses=errors(*_AUTH_ERRORS, 403, 404, 409, *_READ_ERRORS),
    tags=["campaigns"],
    summary="Delete (cancel) a campaign",
    description=(
        "Soft delete of an OPEN campaign by its owner, before its endDate: state DELETED and `deletedAt` "
        '(one conditional write); answers 200 with payload "success" and the campaign under `funding`. '
        "The campaign is then settled like a failed one: the campaign closer refunds its CAPTURED "
        "payments (REFUNDED, each with its ledger event), and payments still in flight are CANCELLED "
        "and their authorizations voided when the functions next handle them. Refused with a 409 "
        "once the endDate has passed (`campaign_ended`: the deadline's outcome, success or refunds, "
        "cannot be dodged) or when the campaign is no longer OPEN."
    ),
)
def delete_campaign(funding_id: FundingIdPath, caller: CallerDep, deps: ServicesDep) -> JSONResponse:
    now = datetime.now(UTC)
    try:
        deleted = deps.store.soft_delete_campaign(funding_id, caller.user_id, to_iso_utc(now))
    except ConditionFailed as exc:
        stored = exc.item or deps.store.get_campaign(funding_id, consistent=True)
        raise _explain_refused_campaign_write(stored, caller, now) from None
    logger.info("campaign deleted", extra={"fundingId": funding_id})
    envelope = CampaignDeletedEnvelope(funding_id=funding_id, funding=Campaign.model_validate(deleted))
    return _envelope(envelope, 200)


# --- payments ----------------------------------------------------------------------------------


def _check_payment_acceptable(campaign: Item | None, amount: int, now: datetime) -> Item:
    """DESIGN §2: an OPEN campaign, inside its dates, minAmount ≤ amount ≤ maxAmount; the campaign."""
    if campaign is None or campaign.get("state") == CampaignState.DELETED:
        raise _not_found("campaign", "payload.fundingId", "body")
    if campaign.get("state") != CampaignState.OPEN:
        raise field_error(
            409,
            "campaign_not_open",
            "payload.fundingId",
            "campaign_open",
            f"The campaign is {campaign.get('state')} and accepts no more payments",
        )
    if to_iso_utc(now) < str(campaign.get("startDate", "")):
        raise field_error(
            409,
            "campaign_not_started",
            "payload.fundingId",
            "campaign_started",
            "The campaign has not started yet",
        )
    if deadline_passed(campaign, now):
        raise _campaign_ended(campaign, "payload.fundingId", "body")
    minimum, maximum = campaign.get("minAmount", 1), campaign.get("maxAmount", amount)
    if amount < minimum:
        raise field_error(
            422,
            "validation_error",
            "payload.amount",
            "amount_at_least_min_amount",
            f"amount should be at least the campaign's minAmount ({minimum})",
        )
    if amount > maximum:
        raise field_error(
            422,
            "validation_error",
            "payload.amount",
            "amount_at_most_max_amount",
            f"amount should be at most the campaign's maxAmount ({maximum})",
        )
    return campaign


_FREEZE_ATTEMPTS = 3


def _freeze_terms(store: Store, campaign: Item, amount: int, now: datetime) -> None:
    """Make sure the campaign's money terms are frozen as this payment was validated against them.

    Free when they already are (a hot campaign's payments cost no extra write). Otherwise one
    conditional write sets `termsFrozenAt` if the terms are still exactly those validated; if the
    owner changed them (or closed the campaign) in between, the payment is validated again against
    the campaign as it is now, and refused if it no longer fits.
    """
    for _ in range(_FREEZE_ATTEMPTS):
        if campaign.get(TERMS_FROZEN_AT):
            return
        terms = {term: campaign.get(term) for term in MONEY_TERMS}
        try:
            store.freeze_campaign_terms(campaign["fundingId"], terms, to_iso_utc(now))
            return
        except ConditionFailed as exc:
            campaign = _check_payment_acceptable(exc.item, amount, now)
    raise ApiError(
        409,
        "conflict",
        "The campaign's terms kept changing while this payment was checked against them; retry",
        headers={"Retry-After": "1"},
    )


def _accepted(payment: Item, published: bool) -> Outcome:
    message = (
        "Payment accepted as PENDING; processing is asynchronous, poll GET /api/payments/{paymentId}"
        if published
        else "Payment recorded as PENDING, but its processing request could not be published now; "
        "it will be re-published automatically, nothing to retry"
    )
    accepted = AcceptedPayment.model_validate(
        {**payment, "publication": "published" if published else "deferred", "message": message}
    )
    envelope = PaymentAcceptedEnvelope(payload=accepted, payment_id=payment["paymentId"])
    return Outcome(
        201, envelope.model_dump(mode="json"), {"Location": f"/api/payments/{payment['paymentId']}"}
    )


@router.post(
    "/api/payments",
    status_code=201,
    response_model=PaymentAcceptedEnvelope,
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 404, 409, 429, 500, 503),
    tags=["payments"],
    summary="Back a campaign",
    description=(
        "Store the payment PENDING, then publish `payment.requested`; the outcome arrives "
        "asynchronously. If publishing fails the payment stays PENDING and the answer says "
        "`publication: deferred`: the reconciler re-publishes PENDING payments, so the client must not "
        "retry with a new key. The first accepted payment freezes the campaign's money terms. Counted "
        "against the caller's quotas (payments per minute, payments per campaign per day): 429 with "
        "Retry-After when one is reached."
    ),
    dependencies=[Depends(json_body_required)],
)
def create_payment(
    body: PaymentRequest, caller: CallerDep, deps: ServicesDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    route = "POST /api/payments"
    details = body.payload
    request_body = body.model_dump(mode="json")

    def answer_for_earlier(stored: Item | None, payment: Item) -> Outcome:
        """The key-derived id exists: this key's earlier use stored it (maybe long ago)."""
        if stored is None or stored.get("userId") != caller.user_id:
            raise ApiError(409, "conflict", "A payment with this id already exists")
        if not same_request(stored, payment.get(REQUEST_HASH_ATTRIBUTE, ""), payment, PAYMENT_REQUEST_FIELDS):
            raise key_reused_error(f"payment {stored['paymentId']}")
        if stored.get("state") != PaymentState.PENDING:
            return _accepted(stored, published=True)
        # Same request, still PENDING: the earlier attempt may have died before publishing; nudge it on.
        return _publish(stored)

    def _publish(payment: Item) -> Outcome:
        published = deps.publisher.publish_payment_requested(payment)
        logger.info(
            "payment accepted",
            extra={
                "paymentId": payment["paymentId"],
                "fundingId": payment["fundingId"],
                "published": published,
            },
        )
        return _accepted(payment, published)

    def create() -> Outcome:
        now = datetime.now(UTC)
        campaign = _check_payment_acceptable(
            deps.store.get_campaign(details.funding_id, consistent=True), details.amount, now
        )
        deps.quotas.charge_payment(caller.user_id, details.funding_id)
        payment = {
            "paymentId": derived_resource_id(caller.user_id, route, idempotency_key),
            "fundingId": details.funding_id,
            "userId": caller.user_id,
            "amount": details.amount,
            "paymentMethod": details.payment_method,
            "state": str(PaymentState.PENDING),
            "createdAt": to_iso_utc(now),
            "updatedAt": to_iso_utc(now),
            **_hash_of_keyed_request(route, request_body, idempotency_key),
        }
        if idempotency_key and not campaign.get(TERMS_FROZEN_AT):
            # Before freezing a campaign's terms for it, make sure this key did not already create a
            # payment (for this or another request): a refused reuse must not freeze anything.
            earlier = deps.store.get_payment(payment["paymentId"])
            if earlier is not None:
                return answer_for_earlier(earlier, payment)
        _freeze_terms(deps.store, campaign, details.amount, now)
        try:
            deps.store.create_payment(payment)
        except ConditionFailed as exc:
            return answer_for_earlier(exc.item, payment)
        return _publish(payment)

    return deps.idempotency.run(
        user_id=caller.user_id, key=idempotency_key, route=route, body=request_body, operation=create
    )


@router.get(
    "/api/payments/{paymentId}",
    response_model=PaymentEnvelope,
    responses=errors(*_AUTH_ERRORS, 403, 404, *_READ_ERRORS),
    tags=["payments"],
    summary="Get a payment's state",
)
def get_payment(payment_id: PaymentIdPath, caller: CallerDep, deps: ServicesDep) -> JSONResponse:
    """The payment's current state; only its backer may see it."""
    item = deps.store.get_payment(payment_id)
    if item is None:
        raise _not_found("payment", "paymentId")
    if item.get("userId") != caller.user_id:
        raise ApiError(403, "forbidden", "Only the payment's backer may see it")
    return _envelope(PaymentEnvelope(payload=Payment.model_validate(item)))
