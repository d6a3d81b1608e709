"""The subnet layout: never overlapping, inside the VPC, and stable when AZs are added."""

from __future__ import annotations

import ipaddress

import pytest
from awsblocks.network.cidr import MAX_AZS, MAX_VPC_PREFIX, MIN_VPC_PREFIX, subnet_layout
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def vpc_cidrs(draw: st.DrawFn) -> str:
    prefix = draw(st.integers(MIN_VPC_PREFIX, MAX_VPC_PREFIX))
    address = draw(st.integers(0, 2**32 - 1))
    return str(ipaddress.ip_network(f"{ipaddress.IPv4Address(address)}/{prefix}", strict=False))


@given(vpc_cidrs(), st.integers(1, MAX_AZS))
def test_subnets_are_disjoint_and_inside_the_vpc(cidr: str, az_count: int) -> None:
    vpc = ipaddress.ip_network(cidr)
    subnets = [ipaddress.ip_network(plan.cidr) for plan in subnet_layout(cidr, az_count)]
    assert len(subnets) == 2 * az_count
    for subnet in subnets:
        assert subnet.subnet_of(vpc)  # type: ignore[arg-type]
        assert subnet.prefixlen <= 28, "AWS's smallest subnet is /28"
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b), f"{a} overlaps {b}"


@given(vpc_cidrs(), st.integers(1, MAX_AZS - 1), st.integers(1, MAX_AZS - 1))
def test_adding_azs_never_changes_an_existing_subnet(cidr: str, before: int, added: int) -> None:
    after = min(MAX_AZS, before + added)
    old = subnet_layout(cidr, before)
    new = subnet_layout(cidr, after)
    assert new[: len(old)] == old


def test_each_az_gets_one_public_and_one_larger_private_subnet() -> None:
    layout = subnet_layout("10.20.0.0/16", 2)
    assert [(p.az_index, p.tier, p.cidr) for p in layout] == [
        (0, "public", "10.20.192.0/22"),
        (0, "private", "10.20.0.0/19"),
        (1, "public", "10.20.196.0/22"),
        (1, "private", "10.20.32.0/19"),
    ]


@pytest.mark.parametrize(
    ("cidr", "azs", "message"),
    [
        ("10.0.0.0/8", 2, "prefix /8"),
        ("10.0.0.0/24", 2, "prefix /24"),
        ("10.0.0.1/16", 2, "host bits"),
        ("10.0.0.0/16", 0, "out of range"),
        ("10.0.0.0/16", 7, "out of range"),
    ],
)
def test_bad_layout_inputs_are_refused(cidr: str, azs: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subnet_layout(cidr, azs)
