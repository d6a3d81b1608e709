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
from app.idempotency import KEY_PATTERN, IdempotentExecutor, Outcome, derived_resource_id
from app.models import (
    ID_PATTERN,
    AcceptedPayment,
    Campaign,
    CampaignCreatedEnvelope,
    CampaignEnvelope,
    CampaignInput,
    CampaignPageEnvelope,
    CampaignReplacement,
    CampaignReplacementWithId,
    ErrorEnvelope,
    HealthEnvelope,
    Payment,
    PaymentAcceptedEnvelope,
    PaymentEnvelope,
    PaymentRequest,
    to_iso_utc,
)
from app.store import ConditionFailed, Item, Store
from lambdas.shared.contract import CampaignState, PaymentState, utc_now_iso

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON body.",
    401: "Missing, malformed, expired or foreign bearer token.",
    403: "Authenticated, but not the campaign's owner or the payment's backer.",
    404: "No such campaign or payment (a deleted campaign counts as absent for writes).",
    409: "Conflicts with the current state (campaign not open, idempotency key reuse or in progress).",
    413: "Request body larger than the service accepts.",
    415: "Body sent with a content type other than application/json.",
    422: "A field or parameter breaks a rule; `details` names each field and rule.",
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


@router.post(
    "/api/funding",
    status_code=201,
    response_model=CampaignCreatedEnvelope,
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 409, 500, 503),
    tags=["campaigns"],
    summary="Create a campaign",
    dependencies=[Depends(json_body_required)],
)
def create_campaign(
    body: CampaignInput, caller: CallerDep, deps: ServicesDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create an OPEN campaign owned by the caller; `fundingAmount` starts at 0 whatever was sent."""
    route = "POST /api/funding"

    def create() -> Outcome:
        funding_id = derived_resource_id(caller.user_id, route, idempotency_key)
        now = utc_now_iso()
        item = {
            "fundingId": funding_id,
            "ownerId": caller.user_id,
            **_campaign_fields(body),
            "fundingAmount": 0,
            "state": str(CampaignState.OPEN),
            "createdAt": now,
            "updatedAt": now,
        }
        try:
            deps.store.create_campaign(item)
        except ConditionFailed as exc:
            # Only a key-derived id can exist already: the same key's earlier attempt got this far.
            if exc.item is None or exc.item.get("ownerId") != caller.user_id:
                raise ApiError(409, "conflict", "A campaign with this id already exists") from None
        logger.info("campaign created", extra={"fundingId": funding_id})
        envelope = CampaignCreatedEnvelope(funding_id=funding_id)
        return Outcome(201, envelope.model_dump(mode="json"), {"Location": _campaign_location(funding_id)})

    return deps.idempotency.run(
        user_id=caller.user_id,
        key=idempotency_key,
        route=route,
        body=body.model_dump(mode="json", exclude_unset=True),
        operation=create,
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


def _explain_refused_campaign_write(
    stored: Item | None, caller: Caller, new_goal: int | None = None
) -> ApiError:
    """Why a conditional campaign write failed, from the item as it is now."""
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
    raised = stored.get("fundingAmount", 0)
    return field_error(
        409,
        "goal_already_reached",
        "goalAmount",
        "goal_above_funding_amount",
        f"goalAmount ({new_goal}) should be greater than the amount already raised ({raised})",
    )


def _replace_campaign(funding_id: str, body: CampaignInput, caller: Caller, deps: Services) -> JSONResponse:
    changes = {**_campaign_fields(body), "updatedAt": utc_now_iso()}
    try:
        updated = deps.store.update_open_campaign(funding_id, caller.user_id, changes)
    except ConditionFailed as exc:
        stored = exc.item or deps.store.get_campaign(funding_id, consistent=True)
        raise _explain_refused_campaign_write(stored, caller, body.goal_amount) from None
    logger.info("campaign updated", extra={"fundingId": funding_id})
    return _envelope(CampaignEnvelope(payload=Campaign.model_validate(updated)))


_PUT_DOC = (
    "Replace an OPEN campaign's client-settable fields (owner only). `fundingAmount` is ignored; "
    "`status`, when omitted, keeps its stored value; goalAmount must stay above the amount raised."
)


@router.put(
    "/api/funding",
    response_model=CampaignEnvelope,
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
    response_model=CampaignEnvelope,
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
    response_model=CampaignEnvelope,
    responses=errors(*_AUTH_ERRORS, 403, 404, 409, *_READ_ERRORS),
    tags=["campaigns"],
    summary="Delete a campaign (soft)",
)
def delete_campaign(funding_id: FundingIdPath, caller: CallerDep, deps: ServicesDep) -> JSONResponse:
    """Mark an OPEN campaign DELETED (owner only); the item and its payments stay for the audit trail.

    Nothing is published here: the functions void in-flight payments when they next handle one of the
    campaign's payment events (they find the campaign DELETED and cancel instead of capturing).
    """
    try:
        deleted = deps.store.soft_delete_campaign(funding_id, caller.user_id, utc_now_iso())
    except ConditionFailed as exc:
        stored = exc.item or deps.store.get_campaign(funding_id, consistent=True)
        raise _explain_refused_campaign_write(stored, caller) from None
    logger.info("campaign deleted", extra={"fundingId": funding_id})
    return _envelope(CampaignEnvelope(payload=Campaign.model_validate(deleted)))


# --- payments ----------------------------------------------------------------------------------


def _check_payment_acceptable(campaign: Item | None, amount: int, now: datetime) -> None:
    """DESIGN §2: an OPEN campaign, inside its dates, minAmount ≤ amount ≤ maxAmount."""
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
    now_iso = to_iso_utc(now)
    if now_iso < str(campaign.get("startDate", "")):
        raise field_error(
            409,
            "campaign_not_started",
            "payload.fundingId",
            "campaign_started",
            "The campaign has not started yet",
        )
    if now_iso > str(campaign.get("endDate", "")):
        raise field_error(
            409, "campaign_ended", "payload.fundingId", "campaign_not_ended", "The campaign has ended"
        )
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
    responses=errors(*_BODY_ERRORS, *_AUTH_ERRORS, 404, 409, 500, 503),
    tags=["payments"],
    summary="Back a campaign",
    dependencies=[Depends(json_body_required)],
)
def create_payment(
    body: PaymentRequest, caller: CallerDep, deps: ServicesDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Store the payment PENDING, then publish `payment.requested`; the outcome arrives asynchronously.

    If publishing fails the payment stays PENDING and the answer says `publication: deferred`: the
    reconciler re-publishes PENDING payments, so the client must not retry with a new key.
    """
    route = "POST /api/payments"
    details = body.payload

    def create() -> Outcome:
        campaign = deps.store.get_campaign(details.funding_id, consistent=True)
        _check_payment_acceptable(campaign, details.amount, datetime.now(UTC))
        now = utc_now_iso()
        payment = {
            "paymentId": derived_resource_id(caller.user_id, route, idempotency_key),
            "fundingId": details.funding_id,
            "userId": caller.user_id,
            "amount": details.amount,
            "paymentMethod": details.payment_method,
            "state": str(PaymentState.PENDING),
            "createdAt": now,
            "updatedAt": now,
        }
        try:
            deps.store.create_payment(payment)
        except ConditionFailed as exc:
            # Same key, earlier attempt died after storing it: answer for that payment, nudging it on.
            stored = exc.item
            if stored is None or stored.get("userId") != caller.user_id:
                raise ApiError(409, "conflict", "A payment with this id already exists") from None
            payment = stored
            if stored.get("state") != PaymentState.PENDING:
                return _accepted(payment, published=True)
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

    return deps.idempotency.run(
        user_id=caller.user_id,
        key=idempotency_key,
        route=route,
        body=body.model_dump(mode="json"),
        operation=create,
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
