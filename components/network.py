"""`Network`: a VPC a team can trust with its money and its upgrades.

- Public and private subnets per AZ from a fixed layout (`components.cidr`): adding an AZ
  never changes an existing subnet's CIDR, so upgrades never replace subnets.
- NAT is an explicit choice (`none | single | per_az`); there is no default that costs money.
- Gateway endpoints for S3 and DynamoDB on every private route table (free, and they keep
  that traffic off the NAT); optional interface endpoints with private DNS, reachable on 443
  from inside the VPC only.
- Flow logs for ALL traffic to an encrypted log group with retention; the default security
  group is stripped of its rules; private subnets never map public IPs.
- Never falls back to a default VPC: everything it needs is passed in.

Example::

    net = Network("network", NetworkArgs(
        availability_zones=["ap-northeast-2a", "ap-northeast-2c"], nat_strategy="single"))
    pulumi.export("private_subnets", net.private_subnet_ids)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.base import Component, account_facts
from components.cidr import MAX_AZS, subnet_layout
from components.encryption import key_arn_or_own

NatStrategy = Literal["none", "single", "per_az"]
NAT_STRATEGIES: tuple[str, ...] = ("none", "single", "per_az")
GATEWAY_ENDPOINT_SERVICES = ("s3", "dynamodb")


@dataclass
class NetworkArgs:
    """Arguments of `Network`.

    Attributes:
        availability_zones: AZ names, 1 to 6, in a stable order (index i gets the i-th subnets).
        nat_strategy: "none" (no NAT; private subnets reach AWS through endpoints only),
            "single" (one NAT gateway in the first AZ: cheap, not AZ-resilient) or "per_az"
            (one per AZ). Required: no silent default that costs money.
        cidr: IPv4 CIDR of the VPC, /16 to /22. Default "10.0.0.0/16".
        interface_endpoints: Service short names ("ecr.api", "logs", "sqs", …) that get an
            interface endpoint with private DNS in every private subnet. Default none.
        flow_log_retention_days: Retention of the flow-log group. Default 30.
        flow_log_kms_key_arn: CMK for the flow-log group. Default: the component creates one.
        tags: Tags for every taggable child (the component adds `component`).
    """

    availability_zones: Sequence[str]
    nat_strategy: NatStrategy
    cidr: str = "10.0.0.0/16"
    interface_endpoints: Sequence[str] = ()
    flow_log_retention_days: int = 30
    flow_log_kms_key_arn: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(Component):
    """VPC, subnets, routing, NAT, endpoints and flow logs. See the module docstring."""

    vpc_id: pulumi.Output[str]
    cidr: str
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    endpoint_security_group_id: pulumi.Output[str] | None
    availability_zones: list[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        azs = list(args.availability_zones)
        if not 1 <= len(azs) <= MAX_AZS:
            raise ValueError(f"Network {name}: {len(azs)} availability zones given; allowed: 1 to {MAX_AZS}")
        if len(set(azs)) != len(azs):
            raise ValueError(f"Network {name}: availability zones repeat: {azs}")
        if args.nat_strategy not in NAT_STRATEGIES:
            raise ValueError(
                f"Network {name}: nat_strategy={args.nat_strategy!r}; allowed: {', '.join(NAT_STRATEGIES)}"
            )
        layout = subnet_layout(args.cidr, len(azs))  # raises on a bad CIDR before anything exists
        super().__init__("network", "Network", name, args.tags, opts)
        facts = account_facts(self)
        self.cidr = args.cidr
        self.availability_zones = azs

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self.named_tags(f"{name}-vpc"),
            opts=self.child_opts(),
        )
        # Strip the default security group of its allow-all rules (CIS EC2.2).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=self.named_tags(f"{name}-default-sg-locked"),
            opts=self.child_opts(),
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self.named_tags(f"{name}-igw"), opts=self.child_opts()
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for plan in layout:
            subnet_name = f"{name}-{plan.tier}-{plan.az_index}"
            subnet = aws.ec2.Subnet(
                subnet_name,
                vpc_id=vpc.id,
                cidr_block=plan.cidr,
                availability_zone=azs[plan.az_index],
                map_public_ip_on_launch=False,
                tags={**self.named_tags(subnet_name), "tier": plan.tier},
                opts=self.child_opts(),
            )
            (public_subnets if plan.tier == "public" else private_subnets).append(subnet)

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            tags=self.named_tags(f"{name}-public-rt"),
            opts=self.child_opts(),
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=self.child_opts(),
        )
        for index, subnet in enumerate(public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=self.child_opts(),
            )

        nat_ids = self._nat_gateways(name, args.nat_strategy, public_subnets, igw)
        private_rts: list[aws.ec2.RouteTable] = []
        for index, subnet in enumerate(private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=vpc.id,
                tags=self.named_tags(f"{name}-private-{index}-rt"),
                opts=self.child_opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rta",
                subnet_id=subnet.id,
                route_table_id=rt.id,
                opts=self.child_opts(),
            )
            if nat_ids:
                aws.ec2.Route(
                    f"{name}-private-{index}-default",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_ids[index] if len(nat_ids) > 1 else nat_ids[0],
                    opts=self.child_opts(),
                )
            private_rts.append(rt)

        for service in GATEWAY_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-gateway-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{facts.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[rt.id for rt in private_rts],
                tags=self.named_tags(f"{name}-{service}-gateway-endpoint"),
                opts=self.child_opts(),
            )

        self.endpoint_security_group_id = None
        if args.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints-sg",
                vpc_id=vpc.id,
                description="Interface VPC endpoints: HTTPS from inside the VPC only",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        description="HTTPS from the VPC",
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[args.cidr],
                    )
                ],
                egress=[],
                tags=self.named_tags(f"{name}-endpoints-sg"),
                opts=self.child_opts(),
            )
            self.endpoint_security_group_id = endpoint_sg.id
            for service in args.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}-endpoint",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{facts.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags=self.named_tags(f"{name}-{service}-endpoint"),
                    opts=self.child_opts(),
                )

        self._flow_logs(name, vpc, args, facts.account_id)

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.private_route_table_ids = [rt.id for rt in private_rts]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "cidr": self.cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "private_route_table_ids": self.private_route_table_ids,
                "endpoint_security_group_id": self.endpoint_security_group_id,
                "availability_zones": azs,
            }
        )

    def _nat_gateways(
        self, name: str, strategy: str, public_subnets: list[aws.ec2.Subnet], igw: aws.ec2.InternetGateway
    ) -> list[pulumi.Output[str]]:
        """Elastic IPs and NAT gateways for the strategy; returns the NAT ids in AZ order."""
        count = {"none": 0, "single": 1, "per_az": len(public_subnets)}[strategy]
        nat_ids: list[pulumi.Output[str]] = []
        for index in range(count):
            eip = aws.ec2.Eip(
                f"{name}-nat-{index}-eip",
                domain="vpc",
                tags=self.named_tags(f"{name}-nat-{index}-eip"),
                opts=self.child_opts(depends_on=[igw]),
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}",
                allocation_id=eip.id,
                subnet_id=public_subnets[index].id,
                connectivity_type="public",
                tags=self.named_tags(f"{name}-nat-{index}"),
                opts=self.child_opts(depends_on=[igw]),
            )
            nat_ids.append(nat.id)
        return nat_ids

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs, account_id: str) -> None:
        """ALL-traffic flow logs to an encrypted log group, written by a role scoped to it."""
        kms_key_arn = key_arn_or_own(
            self, args.flow_log_kms_key_arn, f"{name}-flow-logs", f"{name} VPC flow logs", logs=True
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=kms_key_arn,
            tags=self.named_tags(f"{name}-flow-logs"),
            opts=self.child_opts(),
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                        }
                    ],
                }
            ),
            tags=self.named_tags(f"{name}-flow-logs-role"),
            opts=self.child_opts(),
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                    "logs:DescribeLogStreams",
                                ],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=self.child_opts(),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=self.named_tags(f"{name}-flow-log"),
            opts=self.child_opts(),
        )
