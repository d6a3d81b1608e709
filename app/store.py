"""DynamoDB access for campaigns, payments and idempotency records (low-level client, conditional writes).

Table and index names come from the shared contract, so the API, the functions and the infrastructure
agree on one layout. Every write that could race with a function (the goal being reached, a campaign
closing) is conditional: the API never overwrites a state another writer moved on.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from app.errors import ApiError, field_error
from lambdas.shared import contract
from lambdas.shared.contract import CampaignState

logger = logging.getLogger(__name__)

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_CURSOR_VERSION = 1
_SCAN_MODE = "all"
_MAX_SCAN_CALLS_PER_PAGE = 10
"""A page of the unfiltered listing stops after this many Scan calls (bounded latency and cost)."""
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "AuthFailure",
        "UnrecognizedClientException",
        "AccessDeniedException",
    }
)


MONEY_TERMS = ("goalAmount", "minAmount", "maxAmount", "startDate", "endDate")
"""What a backer agreed to when paying (DESIGN §2): frozen once the campaign accepted a payment."""
TERMS_FROZEN_AT = "termsFrozenAt"
DATE_ONLY_LENGTH = len("2025-03-31")


def not_past_deadline(now_iso: str) -> tuple[str, dict[str, str], Item]:
    """The condition "the campaign's endDate has not passed" (lambdas/shared/campaigns.py `deadline`):
    a timestamp endDate (UTC ISO ms `Z`, what the API writes) counts up to and including that instant,
    a date-only one up to the end of that UTC day. String order is time order in both forms."""
    return (
        "(#endDate >= :now OR (size(#endDate) = :dateOnly AND #endDate >= :today))",
        {"#endDate": "endDate"},
        {":now": now_iso, ":dateOnly": DATE_ONLY_LENGTH, ":today": now_iso[:DATE_ONLY_LENGTH]},
    )


class ConditionFailed(Exception):
    """A conditional write found the item in another state; `item` is what is stored now (or None)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition check failed")
        self.item = item


class CounterItemFull(Exception):
    """A quota counter item reached DynamoDB's 400 KB item size: nothing more can be counted today."""


def to_attribute_values(item: Item) -> dict[str, Any]:
    """Python values → DynamoDB attribute values (ints stay exact numbers)."""
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_attribute_values(attributes: dict[str, Any]) -> Item:
    """DynamoDB attribute values → Python values, integral numbers as int."""
    item = {key: _deserializer.deserialize(value) for key, value in attributes.items()}
    for key, value in item.items():
        if isinstance(value, Decimal):
            item[key] = int(value) if value == value.to_integral_value() else float(value)
    return item


@contextmanager
def dependency_errors(what: str) -> Iterator[None]:
    """Turn throttling, outages and misconfiguration of AWS into a 503 envelope instead of a 500."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _UNAVAILABLE_CODES:
            logger.warning("dependency unavailable", extra={"dependency": what, "errorCode": code})
            raise ApiError(503, "dependency_unavailable", f"The {what} is unavailable; retry later") from None
        raise
    except BotoCoreError as exc:
        logger.warning("dependency unreachable", extra={"dependency": what, "errorType": type(exc).__name__})
        raise ApiError(503, "dependency_unavailable", f"The {what} is unreachable; retry later") from None


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> Item | None:
    old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]  # botocore types it loosely
    return from_attribute_values(old) if old else None


def encode_cursor(mode: str, key: dict[str, Any]) -> str:
    """An opaque page token: the listing mode and the position to resume from."""
    plain = {key_name: _deserializer.deserialize(value) for key_name, value in key.items()}
    raw = json.dumps({"v": _CURSOR_VERSION, "m": mode, "k": plain}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, mode: str) -> dict[str, Any]:
    """Check a page token strictly (it comes from the client) and return the ExclusiveStartKey."""
    invalid = field_error(
        422,
        "validation_error",
        "cursor",
        "cursor_invalid",
        "cursor is not a token from a previous page",
        "query",
    )
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(decoded, dict) or decoded.get("v") != _CURSOR_VERSION:
        raise invalid
    if decoded.get("m") != mode:
        raise field_error(
            422,
            "validation_error",
            "cursor",
            "cursor_mismatch",
            "cursor belongs to a listing with another state filter",
            "query",
        )
    key = decoded.get("k")
    expected = {contract.FUNDINGS_TABLE.partition_key}
    if mode != _SCAN_MODE:
        expected |= {"state", "endDate"}
    if (
        not isinstance(key, dict)
        or set(key) != expected
        or not all(isinstance(value, str) and 0 < len(value) <= 256 for value in key.values())
        or (mode != _SCAN_MODE and key["state"] != mode)
    ):
        raise invalid
    return {name: {"S": value} for name, value in key.items()}


class Store:
    """The service's view of its three tables."""

    def __init__(
        self, dynamodb: Any, *, fundings_table: str, payments_table: str, idempotency_table: str
    ) -> None:
        self._db = dynamodb
        self.fundings_table = fundings_table
        self.payments_table = payments_table
        self.idempotency_table = idempotency_table

    # --- campaigns ---------------------------------------------------------------------------

    def get_campaign(self, funding_id: str, *, consistent: bool = False) -> Item | None:
        """One campaign, or None."""
        with dependency_errors("campaign store"):
            response = self._db.get_item(
                TableName=self.fundings_table,
                Key={contract.FUNDINGS_TABLE.partition_key: {"S": funding_id}},
                ConsistentRead=consistent,
            )
        item = response.get("Item")
        return from_attribute_values(item) if item else None

    def create_campaign(self, item: Item) -> None:
        """Insert a new campaign; ConditionFailed if the id is taken (a replayed create)."""
        self._put_new(self.fundings_table, contract.FUNDINGS_TABLE.partition_key, item, "campaign store")

    def update_open_campaign(self, funding_id: str, owner_id: str, changes: Item, now_iso: str) -> Item:
        """Set `changes` on an OPEN campaign of `owner_id` whose endDate has not passed.

        The money terms may change only while no payment froze them (`termsFrozenAt` absent), and
        then the new goal must stay above the amount raised; once frozen, the write goes through
        only if it leaves every money term exactly as stored (title and description stay editable).
        """
        missing = [term for term in MONEY_TERMS if term not in changes]
        if missing:
            raise ValueError(f"update_open_campaign: changes lack the money terms {missing}")
        position = {name: i for i, name in enumerate(changes)}
        names = {f"#f{i}": name for name, i in position.items()}
        values = {f":v{i}": changes[name] for name, i in position.items()}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in position.values())
        unchanged = " AND ".join(f"#f{position[term]} = :v{position[term]}" for term in MONEY_TERMS)
        deadline, deadline_names, deadline_values = not_past_deadline(now_iso)
        condition = (
            f"attribute_exists(#pk) AND #owner = :owner AND #state = :open AND {deadline} AND ("
            f"(attribute_not_exists(#frozen) AND fundingAmount < :v{position['goalAmount']}) "
            f"OR ({unchanged}))"
        )
        return self._conditional_update(
            funding_id,
            update=f"SET {assignments}",
            condition=condition,
            names={
                **names,
                **deadline_names,
                "#pk": contract.FUNDINGS_TABLE.partition_key,
                "#owner": "ownerId",
                "#state": "state",
                "#frozen": TERMS_FROZEN_AT,
            },
            values={**values, **deadline_values, ":owner": owner_id, ":open": str(CampaignState.OPEN)},
        )

    def soft_delete_campaign(self, funding_id: str, owner_id: str, now_iso: str) -> Item:
        """Mark an OPEN campaign of `owner_id` DELETED before its endDate; the functions settle it
        like a failed one (captured payments refunded, in-flight ones cancelled and voided)."""
        deadline, deadline_names, deadline_values = not_past_deadline(now_iso)
        return self._conditional_update(
            funding_id,
            update="SET #state = :deleted, deletedAt = :now, updatedAt = :now",
            condition=f"attribute_exists(#pk) AND #owner = :owner AND #state = :open AND {deadline}",
            names={
                **deadline_names,
                "#pk": contract.FUNDINGS_TABLE.partition_key,
                "#owner": "ownerId",
                "#state": "state",
            },
            values={
                **deadline_values,
                ":owner": owner_id,
                ":open": str(CampaignState.OPEN),
                ":deleted": str(CampaignState.DELETED),
            },
        )

    def freeze_campaign_terms(self, funding_id: str, terms: Item, now_iso: str) -> Item:
        """Record that the campaign accepted a payment made against exactly `terms` (its money terms
        as the payment was validated): the write happens only if the campaign is still OPEN with
        those very terms, so an owner's concurrent PUT either lands before (and this fails: the
        payment is validated again) or after (and is refused because the terms are frozen)."""
        conditions = " AND ".join(f"#t{i} = :t{i}" for i in range(len(MONEY_TERMS)))
        return self._conditional_update(
            funding_id,
            update="SET #frozen = if_not_exists(#frozen, :now)",
            condition=f"attribute_exists(#pk) AND #state = :open AND {conditions}",
            names={
                **{f"#t{i}": term for i, term in enumerate(MONEY_TERMS)},
                "#pk": contract.FUNDINGS_TABLE.partition_key,
                "#state": "state",
                "#frozen": TERMS_FROZEN_AT,
            },
            values={
                **{f":t{i}": terms[term] for i, term in enumerate(MONEY_TERMS)},
                ":open": str(CampaignState.OPEN),
                ":now": now_iso,
            },
        )

    def _conditional_update(
        self, funding_id: str, *, update: str, condition: str, names: dict[str, str], values: Item
    ) -> Item:
        try:
            with dependency_errors("campaign store"):
                response = self._db.update_item(
                    TableName=self.fundings_table,
                    Key={contract.FUNDINGS_TABLE.partition_key: {"S": funding_id}},
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=to_attribute_values(values),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ConditionFailed(_old_item(exc)) from None
            raise
        return from_attribute_values(response["Attributes"])

    def list_campaigns(
        self, *, limit: int, cursor: str | None, state: CampaignState | None
    ) -> tuple[list[Item], str | None]:
        """A page of campaigns and the cursor of the next one (None at the end).

        With a state: that state's campaigns, soonest end first (the byStateEndDate index). Without:
        every campaign but the deleted ones, in table order; a page may hold fewer than `limit` items
        when many were filtered out, so clients continue while a cursor is returned.
        """
        mode = str(state) if state else _SCAN_MODE
        start_key = decode_cursor(cursor, mode) if cursor else None
        if state is not None:
            return self._query_state_page(state, limit, start_key)
        return self._scan_page(limit, start_key)

    def _query_state_page(
        self, state: CampaignState, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Item], str | None]:
        request: dict[str, Any] = {
            "TableName": self.fundings_table,
            "IndexName": contract.FUNDINGS_BY_STATE_INDEX,
            "KeyConditionExpression": "#state = :state",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":state": {"S": str(state)}},
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = self._read_page("query", request)
        items = [from_attribute_values(item) for item in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        return items, encode_cursor(str(state), last_key) if last_key else None

    def _scan_page(self, limit: int, start_key: dict[str, Any] | None) -> tuple[list[Item], str | None]:
        partition_key = contract.FUNDINGS_TABLE.partition_key
        items: list[Item] = []
        for _ in range(_MAX_SCAN_CALLS_PER_PAGE):
            request: dict[str, Any] = {
                "TableName": self.fundings_table,
                "FilterExpression": "#state <> :deleted",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":deleted": {"S": str(CampaignState.DELETED)}},
                "Limit": limit,
            }
            if start_key:
                request["ExclusiveStartKey"] = start_key
            response = self._read_page("scan", request)
            for raw in response.get("Items", []):
                items.append(from_attribute_values(raw))
                if len(items) == limit:
                    # Resume right after the last item handed out, not after the scanned page.
                    last = {partition_key: {"S": raw[partition_key]["S"]}}
                    more = response.get("LastEvaluatedKey") is not None or raw is not response["Items"][-1]
                    return items, encode_cursor(_SCAN_MODE, last) if more else None
            start_key = response.get("LastEvaluatedKey")
            if not start_key:
                return items, None
        # Scan budget spent on filtered-out items: a short page, resumable where the scan stopped.
        return items, encode_cursor(_SCAN_MODE, start_key) if start_key else None

    def _read_page(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            with dependency_errors("campaign store"):
                return getattr(self._db, operation)(**request)
        except ClientError as exc:
            if (
                exc.response.get("Error", {}).get("Code") == "ValidationException"
                and "ExclusiveStartKey" in request
            ):
                raise field_error(
                    422,
                    "validation_error",
                    "cursor",
                    "cursor_invalid",
                    "cursor does not point into this listing",
                    "query",
                ) from None
            raise

    # --- payments ----------------------------------------------------------------------------

    def get_payment(self, payment_id: str) -> Item | None:
        """One payment, read consistently (backers poll it for the outcome)."""
        with dependency_errors("payment store"):
            response = self._db.get_item(
                TableName=self.payments_table,
                Key={contract.PAYMENTS_TABLE.partition_key: {"S": payment_id}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return from_attribute_values(item) if item else None

    def create_payment(self, item: Item) -> None:
        """Insert a PENDING payment; ConditionFailed (with the stored one) if the id is taken."""
        self._put_new(self.payments_table, contract.PAYMENTS_TABLE.partition_key, item, "payment store")

    def _put_new(self, table: str, partition_key: str, item: Item, what: str) -> None:
        try:
            with dependency_errors(what):
                self._db.put_item(
                    TableName=table,
                    Item=to_attribute_values(item),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": partition_key},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ConditionFailed(_old_item(exc)) from None
            raise

    # --- quota counters ----------------------------------------------------------------------

    def count_against_limits(self, counter_id: str, limits: dict[str, int], expiration: int) -> None:
        """Add 1 to each counter attribute of one item of the idempotency table, in one conditional
        UpdateItem, unless one of them has already reached its limit (then nothing is counted).

        Raises ConditionFailed with the item as it is (which counter is full), or CounterItemFull
        when the item reached DynamoDB's item size.
        """
        names = {f"#c{i}": name for i, name in enumerate(limits)}
        values: Item = {":one": 1, ":expiration": expiration}
        for i, limit in enumerate(limits.values()):
            values[f":l{i}"] = limit
        condition = " AND ".join(
            f"(attribute_not_exists(#c{i}) OR #c{i} < :l{i})" for i in range(len(limits))
        )
        try:
            with dependency_errors("quota store"):
                self._db.update_item(
                    TableName=self.idempotency_table,
                    Key={contract.IDEMPOTENCY_TABLE.partition_key: {"S": counter_id}},
                    UpdateExpression=(
                        "ADD "
                        + ", ".join(f"#c{i} :one" for i in range(len(limits)))
                        + " SET #exp = if_not_exists(#exp, :expiration)"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={
                        **names,
                        "#exp": str(contract.IDEMPOTENCY_TABLE.ttl_attribute),
                    },
                    ExpressionAttributeValues=to_attribute_values(values),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ConditionFailed(_old_item(exc)) from None
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "size" in str(error.get("Message", "")).lower():
                raise CounterItemFull(counter_id) from None
            raise

    # --- idempotency records -----------------------------------------------------------------

    def claim_idempotency_record(self, record: Item, *, now_epoch: int) -> Item | None:
        """Store an IN_PROGRESS record unless a live one exists; return the live one if so.

        A record is live until its TTL (`expiration`); an IN_PROGRESS one may be taken over once its
        `inProgressExpiration` passed (the request that claimed it died).
        """
        try:
            with dependency_errors("idempotency store"):
                self._db.put_item(
                    TableName=self.idempotency_table,
                    Item=to_attribute_values(record),
                    ConditionExpression=(
                        "attribute_not_exists(#id) OR #exp < :now "
                        "OR (#status = :in_progress AND inProgressExpiration < :now)"
                    ),
                    ExpressionAttributeNames={
                        "#id": contract.IDEMPOTENCY_TABLE.partition_key,
                        "#exp": str(contract.IDEMPOTENCY_TABLE.ttl_attribute),
                        "#status": "status",
                    },
                    ExpressionAttributeValues={
                        ":now": {"N": str(now_epoch)},
                        ":in_progress": {"S": "INPROGRESS"},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return _old_item(exc) or self._get_idempotency_record(
                    record[contract.IDEMPOTENCY_TABLE.partition_key]
                )
            raise
        return None

    def _get_idempotency_record(self, record_id: str) -> Item:
        with dependency_errors("idempotency store"):
            response = self._db.get_item(
                TableName=self.idempotency_table,
                Key={contract.IDEMPOTENCY_TABLE.partition_key: {"S": record_id}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return from_attribute_values(item) if item else {}

    def complete_idempotency_record(self, record_id: str, response: Item) -> None:
        """Attach the first response to a claimed record so retries get it back."""
        with dependency_errors("idempotency store"):
            self._db.update_item(
                TableName=self.idempotency_table,
                Key={contract.IDEMPOTENCY_TABLE.partition_key: {"S": record_id}},
                UpdateExpression=(
                    "SET #status = :completed, #response = :response REMOVE inProgressExpiration"
                ),
                ExpressionAttributeNames={"#status": "status", "#response": "response"},
                ExpressionAttributeValues={
                    ":completed": {"S": "COMPLETED"},
                    ":response": {"S": json.dumps(response, separators=(",", ":"))},
                },
            )

    def release_idempotency_record(self, record_id: str) -> None:
        """Forget a claim whose request failed, so the client may retry with the same key."""
        with dependency_errors("idempotency store"):
            self._db.delete_item(
                TableName=self.idempotency_table,
                Key={contract.IDEMPOTENCY_TABLE.partition_key: {"S": record_id}},
            )
