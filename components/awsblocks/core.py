"""What every component shares: a namespaced type token, tags on every child, account facts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

PACKAGE = "awsblocks"
"""The package part of every component's type token, and the Pulumi package name other languages use."""
EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
"""Roughly an email address: enough to catch a typo before AWS sends a confirmation nowhere."""
SID_UNSAFE = re.compile(r"[^A-Za-z0-9]")
"""Characters an IAM statement id may not contain."""


def type_token(name: str) -> str:
    """`awsblocks:index:<Name>`: the token every component registers under (Pulumi packages keep
    their components in the `index` module, which is what another language's SDK imports)."""
    return f"{PACKAGE}:index:{name}"


@dataclass
class ComponentArgs:
    """What every component's arguments share (keyword-only, so it follows any argument)."""

    name_prefix: str = field(default="", kw_only=True)
    """Prepended to the names this component gives resources that must be unique in the account
    and region (KMS aliases, ECS task families, CloudWatch metric and notification rule names),
    e.g. `shop-prod-` so two stacks in one account do not collide. Default "": a component
    inside another component uses its parent's, a top-level one its own name alone."""


class Component(pulumi.ComponentResource):
    """Base class: registers the token and derives the tags each taggable child must carry.

    Children get the caller's tags plus `component=<this component's name>`, so cost reports
    and tag policies can attribute every resource (awsx's tags never reached its children).
    """

    name_prefix: str
    """What this component puts before account-unique names (`ComponentArgs.name_prefix`)."""

    def __init__(
        self,
        type_name: str,
        name: str,
        tags: Mapping[str, str] | None,
        opts: pulumi.ResourceOptions | None,
        *,
        name_prefix: str = "",
    ) -> None:
        super().__init__(type_token(type_name), name, None, opts)
        parent = opts.parent if opts is not None else None
        self.name_prefix = name_prefix or (parent.name_prefix if isinstance(parent, Component) else "")
        self.component_name = name
        self.tags: dict[str, str] = {**(tags or {}), "component": name}

    def child_opts(self, **kwargs: object) -> pulumi.ResourceOptions:
        """Options for a child: always parented to this component."""
        return pulumi.ResourceOptions(parent=self, **kwargs)  # type: ignore[arg-type]

    def named_tags(self, name: str) -> dict[str, str]:
        """The component's tags plus a console-friendly `Name`."""
        return {**self.tags, "Name": name}


@dataclass(frozen=True)
class AccountFacts:
    """Account, region and partition of the provider a component deploys with."""

    account_id: str
    region: str
    partition: str
    dns_suffix: str

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        """An ARN in this account/region, e.g. arn("logs", "log-group:*")."""
        region = self.region if regional else ""
        account_id = self.account_id if account else ""
        return f"arn:{self.partition}:{service}:{region}:{account_id}:{resource}"

    def service_principal(self, service: str) -> str:
        """The service principal, e.g. `logs.ap-northeast-2.amazonaws.com` for regional ones."""
        if service == "logs":
            return f"logs.{self.region}.{self.dns_suffix}"
        return f"{service}.{self.dns_suffix}"


def account_facts(parent: pulumi.Resource) -> AccountFacts:
    """Look up the caller identity, region and partition through the parent's provider."""
    opts = pulumi.InvokeOptions(parent=parent)
    identity = aws.get_caller_identity(opts=opts)
    region = aws.get_region(opts=opts)
    partition = aws.get_partition(opts=opts)
    return AccountFacts(
        account_id=identity.account_id,
        region=region.region or region.name,
        partition=partition.partition,
        dns_suffix=partition.dns_suffix,
    )


def policy_json(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A JSON policy document from statements whose values may be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def account_root_arn(facts: AccountFacts) -> str:
    """The account's root principal: "anyone in this account whom IAM allows"."""
    return f"arn:{facts.partition}:iam::{facts.account_id}:root"


def assume_role_policy(
    service_principal: str, *, source_account: str | None = None, source_arn_like: str | None = None
) -> str:
    """The trust policy letting one AWS service principal (`lambda.amazonaws.com`, …) assume a role.

    `source_account` (and `source_arn_like`) limit it to acting on behalf of this account (and
    those resources): the confused-deputy guard AWS recommends where the service sets them.
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service_principal},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn_like is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn_like}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
