"""The platform's DynamoDB tables, derived from the contract's `TableSpec`s (one place for layouts)."""

from __future__ import annotations

import pulumi
from awsblocks.data.table import Table, TableArgs, TableIndex

from lambdas.shared.contract import TABLES, TableSpec


def table_args(
    spec: TableSpec,
    *,
    kms_key_arn: pulumi.Input[str] | None,
    deletion_protection: bool,
    name_prefix: str = "",
) -> TableArgs:
    """`TableArgs` for a contract table: its keys, indexes and TTL; protection as the stack says."""
    return TableArgs(
        name_prefix=name_prefix,
        partition_key=spec.partition_key,
        sort_key=spec.sort_key,
        indexes=[TableIndex(index.name, index.partition_key, index.sort_key) for index in spec.indexes],
        ttl_attribute=spec.ttl_attribute,
        kms_key_arn=kms_key_arn,
        deletion_protection=deletion_protection,
        retain_on_delete=deletion_protection,
    )


def declare_tables(
    *,
    kms_key_arn: pulumi.Input[str] | None,
    deletion_protection: bool,
    opts: pulumi.ResourceOptions,
    name_prefix: str = "",
) -> dict[str, Table]:
    """One `Table` per contract table, keyed by logical name (fundings, payments, …)."""
    return {
        spec.logical_name: Table(
            spec.logical_name,
            table_args(
                spec,
                kms_key_arn=kms_key_arn,
                deletion_protection=deletion_protection,
                name_prefix=name_prefix,
            ),
            opts=opts,
        )
        for spec in TABLES
    }
