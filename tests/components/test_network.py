"""The Network component: NAT strategies, subnets, endpoints, flow logs, outputs, bad arguments."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from awsblocks.network.cidr import subnet_layout
from awsblocks.network.vpc import Network, NetworkArgs
from awsblocks.testing import Synthesis

from tests.conftest import TEST_REGION, SynthFn

AZS = [f"{TEST_REGION}{c}" for c in "abc"]


def network(synth: SynthFn, **kwargs: Any) -> Synthesis:
    args: dict[str, Any] = {"availability_zones": AZS[:2], "nat_strategy": "single", "cidr": "10.1.0.0/16"}
    args.update(kwargs)
    return synth(program=lambda: Network("net", NetworkArgs(**args)))


@pytest.mark.parametrize(("strategy", "azs", "nats"), [("none", 2, 0), ("single", 3, 1), ("per_az", 3, 3)])
def test_nat_strategy_sets_the_number_of_nat_gateways_and_ips(
    synth: SynthFn, strategy: str, azs: int, nats: int
) -> None:
    s = network(synth, nat_strategy=strategy, availability_zones=AZS[:azs])
    assert len(s.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(s.of_type("aws:ec2/eip:Eip")) == nats
    default_routes = [r for r in s.of_type("aws:ec2/route:Route") if r.inputs.get("natGatewayId")]
    assert len(default_routes) == (azs if nats else 0), "every private route table routes out only with NAT"


def test_nat_instance_routes_every_private_subnet_through_its_own_interface(synth: SynthFn) -> None:
    s = network(synth, nat_strategy="instance", availability_zones=AZS)
    assert s.of_type("aws:ec2/natGateway:NatGateway") == []
    (interface,) = s.of_type("aws:ec2/networkInterface:NetworkInterface")
    assert interface.inputs["sourceDestCheck"] is False, "a NAT must forward traffic it is not addressed"
    assert interface.inputs["subnetId"] == s.named("net-public-0").id
    routes = [s.named(f"net-private-{index}-default") for index in range(3)]
    assert all(r.inputs["networkInterfaceId"] == interface.id for r in routes)
    assert all("natGatewayId" not in r.inputs for r in routes)
    (address,) = s.of_type("aws:ec2/eip:Eip")
    assert address.inputs["networkInterface"] == interface.id, "the egress address outlives the instance"


def test_nat_instance_is_the_smallest_graviton_hardened_and_open_only_to_the_vpc(synth: SynthFn) -> None:
    s = network(synth, nat_strategy="instance")
    (template,) = s.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    (instance,) = s.of_type("aws:ec2/instance:Instance")
    (interface,) = s.of_type("aws:ec2/networkInterface:NetworkInterface")
    assert instance.inputs["launchTemplate"]["id"] == template.id
    assert template.inputs["instanceType"] == "t4g.nano"
    # Looked up by AWS's documented public parameter at launch: no AMI id is pinned or downloaded.
    assert template.inputs["imageId"] == (
        "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    (mapping,) = template.inputs["blockDeviceMappings"]
    assert mapping["ebs"]["encrypted"] == "true" and mapping["ebs"]["volumeType"] == "gp3"
    assert template.inputs["networkInterfaces"] == [
        {"deviceIndex": 0.0, "networkInterfaceId": interface.id, "deleteOnTermination": "false"}
    ]
    user_data = base64.b64decode(template.inputs["userData"]).decode()
    assert "net.ipv4.ip_forward = 1" in user_data and "MASQUERADE" in user_data
    assert "dnf-automatic-install.timer" in user_data, "security updates install without a person"
    (group,) = [g for g in s.of_type("aws:ec2/securityGroup:SecurityGroup") if "nat" in g.name]
    assert interface.inputs["securityGroups"] == [group.id]
    assert [rule["cidrBlocks"] for rule in group.inputs["ingress"]] == [["10.1.0.0/16"]]
    assert "keyName" not in template.inputs, "no SSH key: nothing to log in with"


def test_per_az_nat_keeps_each_azs_traffic_in_its_az(synth: SynthFn) -> None:
    s = network(synth, nat_strategy="per_az", availability_zones=AZS)
    nat_ids = {r.name: r for r in s.of_type("aws:ec2/natGateway:NatGateway")}
    subnets = {r.name: r for r in s.of_type("aws:ec2/subnet:Subnet")}
    for index in range(3):
        assert nat_ids[f"net-nat-{index}"].inputs["subnetId"] == subnets[f"net-public-{index}"].id
        route = s.named(f"net-private-{index}-default")
        assert route.inputs["natGatewayId"] == nat_ids[f"net-nat-{index}"].id
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets.values())


def test_subnets_follow_the_stable_layout(synth: SynthFn) -> None:
    s = network(synth, availability_zones=AZS)
    declared = {
        (r.name, r.inputs["cidrBlock"], r.inputs["availabilityZone"])
        for r in s.of_type("aws:ec2/subnet:Subnet")
    }
    expected = {
        (f"net-{p.tier}-{p.az_index}", p.cidr, AZS[p.az_index]) for p in subnet_layout("10.1.0.0/16", 3)
    }
    assert declared == expected


def test_gateway_endpoints_serve_every_private_route_table(synth: SynthFn) -> None:
    s = network(synth, availability_zones=AZS)
    private_rts = {r.id for r in s.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name}
    endpoints = {r.inputs["serviceName"]: r for r in s.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {f"com.amazonaws.{TEST_REGION}.s3", f"com.amazonaws.{TEST_REGION}.dynamodb"}
    for endpoint in endpoints.values():
        assert endpoint.inputs["vpcEndpointType"] == "Gateway"
        assert set(endpoint.inputs["routeTableIds"]) == private_rts and len(private_rts) == 3


def test_interface_endpoints_are_private_and_reachable_only_from_the_vpc(synth: SynthFn) -> None:
    s = network(synth, interface_endpoints=["ecr.api", "logs"])
    interface = [
        r for r in s.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.inputs["vpcEndpointType"] == "Interface"
    ]
    assert {r.inputs["serviceName"] for r in interface} == {
        f"com.amazonaws.{TEST_REGION}.ecr.api",
        f"com.amazonaws.{TEST_REGION}.logs",
    }
    assert all(r.inputs["privateDnsEnabled"] is True and len(r.inputs["subnetIds"]) == 2 for r in interface)
    (sg,) = s.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert sg.inputs["ingress"] == [
        {
            "cidrBlocks": ["10.1.0.0/16"],
            "description": "HTTPS from the VPC",
            "fromPort": 443,
            "protocol": "tcp",
            "toPort": 443,
        }
    ]
    assert sg.inputs["egress"] == []
    outputs = next(r for r in s.resources if r.type == "awsblocks:index:Network").outputs
    assert outputs["endpoint_security_group_id"] == interface[0].inputs["securityGroupIds"][0]


def test_no_interface_endpoints_means_no_endpoint_security_group(synth: SynthFn) -> None:
    s = network(synth)
    assert s.of_type("aws:ec2/securityGroup:SecurityGroup") == []


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group_with_retention(synth: SynthFn) -> None:
    s = network(synth, flow_log_retention_days=90)
    (flow_log,) = s.of_type("aws:ec2/flowLog:FlowLog")
    (group,) = s.of_type("aws:cloudwatch/logGroup:LogGroup")
    (key,) = s.of_type("aws:kms/key:Key")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"].startswith(f"arn:aws:kms:{TEST_REGION}:")
    assert key.inputs["enableKeyRotation"] is True
    key_policy = json.loads(key.inputs["policy"])
    logs_statement = next(st for st in key_policy["Statement"] if st["Principal"].get("Service"))
    assert logs_statement["Principal"]["Service"] == f"logs.{TEST_REGION}.amazonaws.com"
    (policy,) = s.of_type("aws:iam/rolePolicy:RolePolicy")
    statement = json.loads(policy.inputs["policy"])["Statement"][0]
    assert "*" not in json.dumps(statement["Action"])
    assert all(resource.startswith("arn:aws:logs:") for resource in statement["Resource"])


def test_a_given_flow_log_key_is_used_instead_of_a_new_one(synth: SynthFn) -> None:
    given = f"arn:aws:kms:{TEST_REGION}:123456789012:key/shared"
    s = network(synth, flow_log_kms_key_arn=given)
    assert s.of_type("aws:kms/key:Key") == []
    assert s.of_type("aws:cloudwatch/logGroup:LogGroup")[0].inputs["kmsKeyId"] == given


def test_default_security_group_has_no_rules(synth: SynthFn) -> None:
    (default_sg,) = network(synth).of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs.get("ingress", []) == [] and default_sg.inputs.get("egress", []) == []


def test_every_child_is_parented_to_the_component_and_outputs_are_registered(synth: SynthFn) -> None:
    s = network(synth)
    component = next(r for r in s.resources if r.type == "awsblocks:index:Network")
    assert {r.urn for r in s.descendants(component)} == {r.urn for r in s.resources if r is not component}
    outputs = component.outputs
    assert outputs["cidr"] == "10.1.0.0/16"
    assert len(outputs["public_subnet_ids"]) == len(outputs["private_subnet_ids"]) == 2
    assert outputs["vpc_id"] == s.named("net-vpc").id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"availability_zones": [f"z{i}" for i in range(7)]}, "7 availability zones given; allowed: 1 to 6"),
        ({"availability_zones": []}, "0 availability zones given"),
        ({"availability_zones": ["a", "a"]}, "availability zones repeat"),
        ({"nat_strategy": "shared"}, "nat_strategy='shared'; allowed: none, single, instance, per_az"),
        ({"cidr": "10.0.0.0/12"}, "prefix /12"),
        (
            {"nat_strategy": "instance", "nat_instance_type": "t3.nano"},
            r"nat_instance_type='t3.nano'; allowed: a Graviton \(arm64\) type",
        ),
        (
            {"nat_strategy": "instance", "nat_instance_image": "al2023"},
            "nat_instance_image='al2023'; allowed: an AMI id",
        ),
    ],
)
def test_bad_arguments_fail_at_declaration(synth: SynthFn, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        network(synth, **kwargs)
