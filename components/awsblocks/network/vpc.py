"""`Network`: a VPC a team can trust with its money and its upgrades.

- Public and private subnets per AZ from a fixed layout (`awsblocks.network.cidr`): adding an AZ
  never changes an existing subnet's CIDR, so upgrades never replace subnets.
- NAT is an explicit choice (`none | single | instance | per_az`); there is no default that
  costs money. Trade-offs (ap-northeast-2 list prices, 730 h a month):

  - `none`: $0; private subnets reach AWS through the gateway/interface endpoints only.
  - `instance`: ~$8/month (t4g.nano, its public IPv4 address, an 8 GB gp3 volume) and no
    per-GB charge. No HA: one instance in one AZ, so a stop, an AZ outage or a replacement
    cuts egress until it is back; you own the OS (security updates install nightly through
    dnf-automatic; a new AMI arrives only when the instance is replaced); up to 5 Gbps burst.
  - `single`: ~$47/month (gateway hours + its IPv4 address) + $0.059/GB; managed, scales to
    100 Gbps, survives instance failures but not the loss of its AZ.
  - `per_az`: the above per AZ; survives an AZ outage.

  `instance` is the fck-nat pattern for development stacks: a NAT instance on the smallest
  Graviton type (`t4g.nano`) in the first public subnet, with source/destination check off.
  Its network interface and Elastic IP are resources of their own, so the private route
  tables point at the interface and the egress address stays the same when the instance is
  replaced (a payment gateway can allowlist it). The AMI is not downloaded or pinned by id:
  the launch template names AWS's public SSM parameter for the latest Amazon Linux 2023 arm64
  AMI (`resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64`,
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/finding-an-ami.html), resolved by EC2
  when the instance launches. User data turns on IP forwarding and masquerading (kept across
  reboots by a systemd unit) and nightly security updates; IMDSv2 is required and the root
  volume is encrypted. No SSH key, no open port: it takes traffic from the VPC's CIDR only.
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

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs, account_facts, assume_role_policy
from awsblocks.network.cidr import MAX_AZS, subnet_layout
from awsblocks.security.encryption_key import key_arn_or_own

NatStrategy = Literal["none", "single", "instance", "per_az"]
NAT_STRATEGIES: tuple[str, ...] = ("none", "single", "instance", "per_az")
GATEWAY_ENDPOINT_SERVICES = ("s3", "dynamodb")
NAT_INSTANCE_TYPE = "t4g.nano"
"""The smallest Graviton instance: 2 vCPU (burstable), 0.5 GB, up to 5 Gbps."""
NAT_INSTANCE_IMAGE = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
"""AWS's public SSM parameter naming the latest Amazon Linux 2023 arm64 AMI; EC2 resolves it at launch
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html)."""
NAT_INSTANCE_VOLUME_GB = 8
"""Root volume of the NAT instance (gp3, encrypted): the size of the AL2023 AMI's snapshot."""
_GRAVITON_TYPE = re.compile(r"^[a-z]+[0-9]+g[a-z]*\.[a-z0-9]+$")
_NAT_USER_DATA = """#!/bin/bash
# NAT instance (the fck-nat pattern on Amazon Linux 2023): forward and masquerade the VPC's
# traffic out of the primary interface, kept across reboots; security updates install nightly.
set -euo pipefail
dnf install -y iptables-nft dnf-automatic
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
cat > /usr/local/sbin/nat-masquerade <<'SCRIPT'
#!/bin/bash
set -euo pipefail
iface=$(ip -o route show default | awk '{print $5; exit}')
iptables -t nat -C POSTROUTING -o "$iface" -j MASQUERADE 2>/dev/null \\
  || iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
SCRIPT
chmod 0755 /usr/local/sbin/nat-masquerade
cat > /etc/systemd/system/nat-masquerade.service <<'UNIT'
[Unit]
Description=Masquerade forwarded traffic (NAT instance)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nat-masquerade

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now nat-masquerade.service
systemctl enable --now dnf-automatic-install.timer
"""


@dataclass
class NetworkArgs(ComponentArgs):
    """Arguments of `Network`.

    Attributes:
        availability_zones: AZ names, 1 to 6, in a stable order (index i gets the i-th subnets).
        nat_strategy: "none" (no NAT; private subnets reach AWS through endpoints only),
            "instance" (one NAT instance in the first AZ: a few dollars a month, no HA, you
            own its patching), "single" (one NAT gateway in the first AZ: managed, not
            AZ-resilient) or "per_az" (one NAT gateway per AZ). Required: no silent default
            that costs money. See the module docstring for the trade-offs.
        cidr: IPv4 CIDR of the VPC, /16 to /22. Default "10.0.0.0/16".
        interface_endpoints: Service short names ("ecr.api", "logs", "sqs", …) that get an
            interface endpoint with private DNS in every private subnet. Default none.
        flow_log_retention_days: Retention of the flow-log group. Default 30.
        flow_log_kms_key_arn: CMK for the flow-log group. Default: the component creates one.
        nat_instance_type: Instance type of the "instance" strategy: a Graviton (arm64) type,
            since the default image is arm64. Default "t4g.nano".
        nat_instance_image: AMI of the "instance" strategy: an AMI id or
            "resolve:ssm:<public parameter>". Default: the latest Amazon Linux 2023 arm64
            (`NAT_INSTANCE_IMAGE`); the user data needs dnf and systemd, so keep to AL2023.
        tags: Tags for every taggable child (the component adds `component`).
    """

    availability_zones: Sequence[str]
    nat_strategy: NatStrategy
    cidr: str = "10.0.0.0/16"
    interface_endpoints: Sequence[str] = ()
    flow_log_retention_days: int = 30
    flow_log_kms_key_arn: pulumi.Input[str] | None = None
    nat_instance_type: str = NAT_INSTANCE_TYPE
    nat_instance_image: str = NAT_INSTANCE_IMAGE
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(Component):
    """VPC, subnets, routing, NAT, endpoints and flow logs. See the module docstring.

    Outputs: `vpc_id`, `cidr`, `availability_zones` (in subnet order), `public_subnet_ids` and
    `private_subnet_ids` (one per AZ, same order), `private_route_table_ids`,
    `endpoint_security_group_id` (of the interface endpoints; None without any).
    """

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
        if args.nat_strategy == "instance" and not _GRAVITON_TYPE.match(args.nat_instance_type):
            raise ValueError(
                f"Network {name}: nat_instance_type={args.nat_instance_type!r}; allowed: a Graviton (arm64) "
                f"type such as {NAT_INSTANCE_TYPE} or t4g.micro (the NAT image is arm64)"
            )
        if args.nat_strategy == "instance" and not (
            args.nat_instance_image.startswith("ami-") or args.nat_instance_image.startswith("resolve:ssm:")
        ):
            raise ValueError(
                f"Network {name}: nat_instance_image={args.nat_instance_image!r}; allowed: an AMI id "
                "(ami-...) or resolve:ssm:<parameter name>"
            )
        layout = subnet_layout(args.cidr, len(azs))  # raises on a bad CIDR before anything exists
        super().__init__("Network", name, args.tags, opts, name_prefix=args.name_prefix)
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

        nat_ids: list[pulumi.Output[str]] = []
        nat_interface: pulumi.Output[str] | None = None
        if args.nat_strategy == "instance":
            nat_interface = self._nat_instance(name, args, vpc, public_subnets[0], igw)
        else:
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
            nat_target: dict[str, pulumi.Input[str]] = {}
            if nat_ids:
                nat_target["nat_gateway_id"] = nat_ids[index] if len(nat_ids) > 1 else nat_ids[0]
            elif nat_interface is not None:
                nat_target["network_interface_id"] = nat_interface
            if nat_target:
                aws.ec2.Route(
                    f"{name}-private-{index}-default",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    opts=self.child_opts(),
                    **nat_target,
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

    def _nat_instance(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        subnet: aws.ec2.Subnet,
        igw: aws.ec2.InternetGateway,
    ) -> pulumi.Output[str]:
        """A NAT instance behind a network interface of its own; returns that interface's id.

        The interface (source/destination check off) and its Elastic IP outlive the instance, so
        a replaced instance takes over the same routes and the same egress address.
        """
        group = aws.ec2.SecurityGroup(
            f"{name}-nat-instance-sg",
            vpc_id=vpc.id,
            description="NAT instance: any traffic from the VPC, out to the internet",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="Traffic to forward, from the VPC only",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=[args.cidr],
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="Forwarded traffic and package updates, to the internet",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            tags=self.named_tags(f"{name}-nat-instance-sg"),
            opts=self.child_opts(),
        )
        interface = aws.ec2.NetworkInterface(
            f"{name}-nat-eni",
            subnet_id=subnet.id,
            security_groups=[group.id],
            source_dest_check=False,
            description=f"{name} NAT instance: the private subnets' default route",
            tags=self.named_tags(f"{name}-nat-eni"),
            opts=self.child_opts(),
        )
        address = aws.ec2.Eip(
            f"{name}-nat-0-eip",
            domain="vpc",
            network_interface=interface.id,
            tags=self.named_tags(f"{name}-nat-0-eip"),
            opts=self.child_opts(depends_on=[igw]),
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-nat-template",
            description=f"{name} NAT instance",
            image_id=args.nat_instance_image,
            instance_type=args.nat_instance_type,
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0, network_interface_id=interface.id, delete_on_termination="false"
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=NAT_INSTANCE_VOLUME_GB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            ebs_optimized="true",
            user_data=base64.b64encode(_NAT_USER_DATA.encode()).decode(),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags=self.named_tags(f"{name}-nat-instance")
                )
                for kind in ("instance", "volume")
            ],
            tags=self.named_tags(f"{name}-nat-template"),
            opts=self.child_opts(),
        )
        aws.ec2.Instance(
            f"{name}-nat-instance",
            launch_template=aws.ec2.InstanceLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            tags=self.named_tags(f"{name}-nat-instance"),
            # The user data installs packages: the public address must exist before boot.
            opts=self.child_opts(depends_on=[igw, address]),
        )
        return interface.id

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
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com", source_account=account_id),
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
