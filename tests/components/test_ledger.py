"""The ledger Table: on demand, PITR, CMK, keys and indexes, TTL, streams, protection and retention."""

from __future__ import annotations

from typing import Any

import pytest
from awsblocks.data.table import Table, TableArgs, TableIndex
from awsblocks.testing import MOCK_ACCOUNT_ID, OfflineMocks, RecordingMonitor, Synthesis
from pulumi.runtime.mocks import MockResourceArgs

from tests.conftest import TEST_REGION, SynthFn
from toolchain.project import synthesize

SHARED_KEY = f"arn:aws:kms:{TEST_REGION}:{MOCK_ACCOUNT_ID}:key/shared"


def table(synth: SynthFn, **kwargs: Any) -> Synthesis:
    args: dict[str, Any] = {"partition_key": "orderId"}
    args.update(kwargs)
    return synth(program=lambda: Table("orders", TableArgs(**args)))


def test_defaults_are_on_demand_with_pitr_and_an_own_rotating_key(synth: SynthFn) -> None:
    s = table(synth)
    (resource,) = s.of_type("aws:dynamodb/table:Table")
    (key,) = s.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    key_arn = OfflineMocks(TEST_REGION).new_resource(
        MockResourceArgs(key.type, key.name, key.inputs, custom=True)
    )[1]["arn"]
    assert resource.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert resource.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert resource.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn}
    assert resource.inputs["hashKey"] == "orderId" and "rangeKey" not in resource.inputs
    assert resource.inputs["attributes"] == [{"name": "orderId", "type": "S"}]
    assert resource.inputs["deletionProtectionEnabled"] is False
    assert resource.inputs["streamEnabled"] is False
    assert "ttl" not in resource.inputs and "globalSecondaryIndexes" not in resource.inputs


def test_indexes_ttl_and_streams_are_declared_with_every_key_attribute(synth: SynthFn) -> None:
    s = table(
        synth,
        sort_key="createdAt",
        indexes=[TableIndex("byCustomer", "customerId", "createdAt"), TableIndex("byState", "state")],
        attribute_types={"createdAt": "N"},
        ttl_attribute="expiresAt",
        stream_view_type="NEW_AND_OLD_IMAGES",
        kms_key_arn=SHARED_KEY,
    )
    (resource,) = s.of_type("aws:dynamodb/table:Table")
    assert s.of_type("aws:kms/key:Key") == []
    assert resource.inputs["serverSideEncryption"]["kmsKeyArn"] == SHARED_KEY
    assert resource.inputs["attributes"] == [
        {"name": "orderId", "type": "S"},
        {"name": "createdAt", "type": "N"},
        {"name": "customerId", "type": "S"},
        {"name": "state", "type": "S"},
    ]
    indexes = {i["name"]: i for i in resource.inputs["globalSecondaryIndexes"]}
    assert indexes["byCustomer"]["keySchemas"] == [
        {"attributeName": "customerId", "keyType": "HASH"},
        {"attributeName": "createdAt", "keyType": "RANGE"},
    ]
    assert indexes["byState"]["keySchemas"] == [{"attributeName": "state", "keyType": "HASH"}]
    assert {i["projectionType"] for i in indexes.values()} == {"ALL"}
    assert resource.inputs["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert (resource.inputs["streamEnabled"], resource.inputs["streamViewType"]) == (
        True,
        "NEW_AND_OLD_IMAGES",
    )
    outputs = next(out for urn, out in s.component_outputs.items() if urn.endswith("::orders"))
    assert [arn.rsplit("/", 2)[1:] for arn in outputs["index_arns"]] == [
        ["index", "byCustomer"],
        ["index", "byState"],
    ]


@pytest.mark.parametrize("protected", [False, True])
def test_protection_and_retention_follow_the_caller(protected: bool) -> None:
    """retain_on_delete is a resource option, so the test reads it from the engine request."""

    def program() -> None:
        Table(
            "orders",
            TableArgs(partition_key="orderId", deletion_protection=protected, retain_on_delete=protected),
        )

    monitor = RecordingMonitor(OfflineMocks(TEST_REGION))
    retained: list[bool] = []
    original = monitor.RegisterResource

    def spy(request: Any) -> Any:
        if request.type == "aws:dynamodb/table:Table":
            retained.append(bool(request.retainOnDelete))
        return original(request)

    monitor.RegisterResource = spy  # type: ignore[method-assign]
    s = synthesize("test", config={"aws:region": TEST_REGION}, program=program, monitor=monitor)
    (resource,) = s.of_type("aws:dynamodb/table:Table")
    assert resource.inputs["deletionProtectionEnabled"] is protected
    assert retained == [protected]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partition_key": ""}, r"Table t: partition_key is empty"),
        ({"indexes": [TableIndex("x", "a")]}, r"index name 'x'; allowed: 3-255"),
        ({"indexes": [TableIndex("byA", "a"), TableIndex("byA", "b")]}, r"index names repeat: \['byA'\]"),
        ({"attribute_types": {"other": "N"}}, r"attribute_types names 'other', which is not a key attribute"),
        ({"attribute_types": {"pk": "BOOL"}}, r"attribute_types\['pk'\]='BOOL'; allowed: S, N, B"),
        ({"ttl_attribute": "pk"}, r"ttl_attribute='pk' is a key attribute"),
        ({"stream_view_type": "ALL"}, r"stream_view_type='ALL'; allowed: KEYS_ONLY"),
    ],
)
def test_bad_table_arguments_are_refused_with_a_message(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"partition_key": "pk"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Table("t", TableArgs(**args))
