"""What every component shares: a namespaced type token, tags on every child, account facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

TYPE_PREFIX = "crowdfunding"


def type_token(module: str, name: str) -> str:
    """`crowdfunding:<module>:<Name>`: the token every component registers under."""
    return f"{TYPE_PREFIX}:{module}:{name}"


class Component(pulumi.ComponentResource):
    """Base class: registers the token and derives the tags each taggable child must carry.

    Children get the caller's tags plus `component=<this component's name>`, so cost reports
    and tag policies can attribute every resource (awsx's tags never reached its children).
    """

    def __init__(
        self,
        module: str,
        type_name: str,
        name: str,
        tags: Mapping[str, str] | None,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        super().__init__(type_token(module, type_name), name, None, opts)
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
