"""`Table`: a DynamoDB table a team can keep money in.

- On-demand billing (no capacity to size or to throttle on), point-in-time recovery on,
  server-side encryption with a customer-managed KMS key (the component creates one with
  rotation when no key is passed).
- Global secondary indexes (projection ALL), TTL and streams as options.
- `deletion_protection=True` protects the table in AWS; `retain_on_delete=True` keeps it when it
  is removed from the program. Turn both on for production data.

Example::

    orders = Table("orders", TableArgs(
        partition_key="orderId",
        indexes=[TableIndex("byCustomer", "customerId", "createdAt")],
        ttl_attribute="expiresAt",
        deletion_protection=True, retain_on_delete=True))
    pulumi.export("orders_table", orders.name)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs
from awsblocks.security.encryption_key import key_arn_or_own

AttributeType = Literal["S", "N", "B"]
ATTRIBUTE_TYPES: tuple[str, ...] = ("S", "N", "B")
StreamViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
STREAM_VIEW_TYPES: tuple[str, ...] = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
MAX_GSIS = 20


@dataclass(frozen=True)
class TableIndex:
    """A global secondary index, projecting every attribute.

    Attributes:
        name: Index name (3-255 of letters, digits, `_`, `-`, `.`).
        partition_key: Partition (hash) key attribute of the index.
        sort_key: Sort (range) key attribute of the index. Default none.
    """

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass
class TableArgs(ComponentArgs):
    """Arguments of `Table`.

    Attributes:
        partition_key: Partition (hash) key attribute of the table.
        sort_key: Sort (range) key attribute. Default none.
        indexes: Global secondary indexes (projection ALL). Default none.
        attribute_types: Type ("S", "N" or "B") of key attributes that are not strings.
            Every key attribute of the table and its indexes defaults to "S".
        ttl_attribute: Attribute holding an epoch-seconds expiry; DynamoDB deletes expired items.
            Default none (TTL off).
        stream_view_type: Turn on a DynamoDB stream with this view ("KEYS_ONLY", "NEW_IMAGE",
            "OLD_IMAGE", "NEW_AND_OLD_IMAGES"). Default none (no stream).
        kms_key_arn: CMK for server-side encryption. Default: the component creates one (rotation on).
        point_in_time_recovery: Continuous backups for 35 days. Default True; turning it off is an
            explicit opt-out.
        deletion_protection: Refuse DeleteTable in AWS. Default False; set True for production data.
        retain_on_delete: Keep the table in AWS when it is removed from the program or the stack is
            destroyed. Default False; set True for production data.
        tags: Tags for the table and its key (the component adds `component`).
    """

    partition_key: str
    sort_key: str | None = None
    indexes: Sequence[TableIndex] = ()
    attribute_types: Mapping[str, AttributeType] = field(default_factory=dict)
    ttl_attribute: str | None = None
    stream_view_type: StreamViewType | None = None
    kms_key_arn: pulumi.Input[str] | None = None
    point_in_time_recovery: bool = True
    deletion_protection: bool = False
    retain_on_delete: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)

    def key_attributes(self) -> list[str]:
        """Every attribute used in a key of the table or an index, in first-use order."""
        names: list[str] = []
        for attr in (self.partition_key, self.sort_key):
            if attr and attr not in names:
                names.append(attr)
        for index in self.indexes:
            for attr in (index.partition_key, index.sort_key):
                if attr and attr not in names:
                    names.append(attr)
        return names


def validate_table_args(name: str, args: TableArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""
    if not args.partition_key:
        raise ValueError(f"Table {name}: partition_key is empty; allowed: an attribute name")
    index_names = [index.name for index in args.indexes]
    for index_name in index_names:
        if not _NAME_PATTERN.match(index_name):
            raise ValueError(
                f"Table {name}: index name {index_name!r}; allowed: 3-255 letters, digits, '_', '-', '.'"
            )
    duplicates = sorted({n for n in index_names if index_names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Table {name}: index names repeat: {duplicates}; allowed: unique names")
    if len(index_names) > MAX_GSIS:
        raise ValueError(f"Table {name}: {len(index_names)} indexes; allowed: at most {MAX_GSIS}")
    keys = args.key_attributes()
    for attr, kind in args.attribute_types.items():
        if attr not in keys:
            raise ValueError(
                f"Table {name}: attribute_types names {attr!r}, which is not a key attribute; "
                f"allowed: one of {keys}"
            )
        if kind not in ATTRIBUTE_TYPES:
            raise ValueError(f"Table {name}: attribute_types[{attr!r}]={kind!r}; allowed: S, N, B")
    if args.stream_view_type is not None and args.stream_view_type not in STREAM_VIEW_TYPES:
        raise ValueError(
            f"Table {name}: stream_view_type={args.stream_view_type!r}; "
            f"allowed: {', '.join(STREAM_VIEW_TYPES)} or None"
        )
    if args.ttl_attribute is not None and args.ttl_attribute in keys:
        raise ValueError(
            f"Table {name}: ttl_attribute={args.ttl_attribute!r} is a key attribute; "
            "allowed: a non-key attribute holding epoch seconds"
        )


def _key_schema(
    partition_key: str, sort_key: str | None
) -> list[aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs]:
    schema = [
        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=partition_key, key_type="HASH")
    ]
    if sort_key:
        schema.append(
            aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=sort_key, key_type="RANGE")
        )
    return schema


def _index_arn(table_arn: pulumi.Output[str], index_name: str) -> pulumi.Output[str]:
    return table_arn.apply(lambda arn: f"{arn}/index/{index_name}")


class Table(Component):
    """A DynamoDB table: on demand, PITR, CMK encryption. See the module docstring.

    Outputs: `name`, `arn`, `stream_arn` (None without a stream), `index_arns` (one per index),
    `kms_key_arn`.
    """

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str] | None
    index_arns: list[pulumi.Output[str]]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_table_args(name, args)
        super().__init__("Table", name, args.tags, opts, name_prefix=args.name_prefix)
        kms_key_arn = key_arn_or_own(self, args.kms_key_arn, f"{name}-table-key", f"DynamoDB table {name}")

        table = aws.dynamodb.Table(
            f"{name}-table",
            billing_mode="PAY_PER_REQUEST",
            hash_key=args.partition_key,
            range_key=args.sort_key,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=attr, type=args.attribute_types.get(attr, "S"))
                for attr in args.key_attributes()
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index.name,
                    key_schemas=_key_schema(index.partition_key, index.sort_key),
                    projection_type="ALL",
                )
                for index in args.indexes
            ]
            or None,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=args.ttl_attribute, enabled=True)
            if args.ttl_attribute
            else None,
            stream_enabled=args.stream_view_type is not None,
            stream_view_type=args.stream_view_type,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=args.point_in_time_recovery
            ),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=kms_key_arn
            ),
            deletion_protection_enabled=args.deletion_protection,
            tags=self.named_tags(name),
            opts=self.child_opts(retain_on_delete=args.retain_on_delete),
        )
        self.name = table.name
        self.arn = table.arn
        self.stream_arn = table.stream_arn if args.stream_view_type else None
        self.index_arns = [_index_arn(table.arn, index.name) for index in args.indexes]
        self.kms_key_arn = kms_key_arn
        self.register_outputs(
            {
                "name": table.name,
                "arn": table.arn,
                "stream_arn": self.stream_arn,
                "index_arns": self.index_arns,
                "kms_key_arn": kms_key_arn,
            }
        )
