"""Subnet CIDR layout: a pure function, so upgrades and added AZs never move a subnet.

The VPC is cut into 8 equal blocks (prefix + 3). Block i (i < 6) is AZ i's private subnet;
block 6 is cut again into 8 (prefix + 6) and its piece i is AZ i's public subnet; block 7
is left free for later tiers. A subnet's CIDR depends only on the VPC CIDR and its AZ index,
never on how many AZs there are: adding an AZ adds subnets and changes none (awsx's
re-layout on upgrade replaced every subnet; this layout cannot).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

MAX_AZS = 6
MIN_VPC_PREFIX = 16
"""AWS's largest VPC."""
MAX_VPC_PREFIX = 22
"""The smallest VPC for which a public subnet (prefix + 6) is still /28, AWS's smallest subnet."""

Tier = Literal["public", "private"]


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet to create: which AZ (by index), which tier, which CIDR."""

    az_index: int
    tier: Tier
    cidr: str


def _check(vpc_cidr: str, az_count: int) -> ipaddress.IPv4Network:
    network = ipaddress.ip_network(vpc_cidr, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"VPC CIDR {vpc_cidr!r} is not IPv4")
    if not MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX:
        raise ValueError(
            f"VPC CIDR {vpc_cidr!r} has prefix /{network.prefixlen}; "
            f"allowed: /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX}"
        )
    if not 1 <= az_count <= MAX_AZS:
        raise ValueError(f"AZ count {az_count} is out of range; allowed: 1 to {MAX_AZS}")
    return network


def private_subnet_cidr(vpc_cidr: str, az_index: int) -> str:
    """CIDR of AZ `az_index`'s private subnet (a /prefix+3: the larger tier, for tasks)."""
    network = _check(vpc_cidr, az_index + 1)
    blocks = list(network.subnets(prefixlen_diff=3))
    return str(blocks[az_index])


def public_subnet_cidr(vpc_cidr: str, az_index: int) -> str:
    """CIDR of AZ `az_index`'s public subnet (a /prefix+6: load balancers and NAT only)."""
    network = _check(vpc_cidr, az_index + 1)
    public_block = list(network.subnets(prefixlen_diff=3))[6]
    return str(list(public_block.subnets(prefixlen_diff=3))[az_index])


def subnet_layout(vpc_cidr: str, az_count: int) -> list[SubnetPlan]:
    """Every subnet for `az_count` AZs: public then private per AZ, in AZ order."""
    _check(vpc_cidr, az_count)
    plans: list[SubnetPlan] = []
    for index in range(az_count):
        plans.append(SubnetPlan(index, "public", public_subnet_cidr(vpc_cidr, index)))
        plans.append(SubnetPlan(index, "private", private_subnet_cidr(vpc_cidr, index)))
    return plans
