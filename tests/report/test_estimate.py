"""Line items read from synthesized resources: counts, task sizes, schedules, message flow."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from tests.conftest import SynthFn
from tests.report.pipeline import pipeline
from toolchain.report.costs import round_money
from toolchain.report.estimate import Assumptions, Load, estimate, message_flow
from toolchain.report.prices import load_prices
from toolchain.report.topology import build_topology

PRICES = load_prices("ap-northeast-2")
ORDERS = Assumptions(payment_events=("order.paid",))


def _line(est, item):  # type: ignore[no-untyped-def]
    found = [li for li in est.lines if li.item == item]
    assert found, f"no line {item!r}; lines: {[li.item for li in est.lines]}"
    return found[0]


def test_message_flow_follows_filters_mappings_and_invokes(synth: SynthFn) -> None:
    synthesis = synth(program=pipeline)
    topo = build_topology(synthesis)
    publishes, messages, invocations = message_flow(topo, ORDERS)
    names = {r.urn: r.name for r in synthesis.resources}
    assert publishes == 1
    assert {names[u]: n for u, n in messages.items()} == {"shipping-queue": 1, "audit-queue": 1}
    # shipper and auditor consume one message each; shipper invokes labels once.
    assert {names[u]: n for u, n in invocations.items()} == {
        "shipper-function": 1,
        "auditor-function": 1,
        "labels-function": 1,
    }


def test_pipeline_estimate_idle_and_at_load(synth: SynthFn) -> None:
    synthesis = synth(program=pipeline)
    est = estimate(synthesis, Load(api_requests=0, payments=10_000), PRICES, ORDERS)
    keys = len(synthesis.of_type("aws:kms/key:Key"))
    assert keys > 0
    assert _line(est, "KMS customer managed keys").idle_cost == keys * 1.0
    # two mappings poll idle: 2 x 657,000 requests = 1.314M, 1M free: 0.314 x $0.40 = $0.1256
    sqs = _line(est, "SQS requests")
    assert sqs.idle_quantity == pytest.approx(1.314)
    assert round_money(sqs.idle_cost) == 0.13
    # at load add 10,000 payments x 2 messages x 3 requests = 60,000
    assert sqs.load_quantity == pytest.approx(1.374)
    # the sweeper runs every 5 minutes: 8,760 runs idle; at load + 3 invocations per payment
    requests = _line(est, "Lambda requests")
    assert requests.idle_quantity * 1e6 == pytest.approx(8760)
    assert requests.load_quantity * 1e6 == pytest.approx(8760 + 30_000)
    # reads: the sweeper's runs idle; at load shipper and auditor read and write one item each
    reads = _line(est, "DynamoDB read request units")
    writes = _line(est, "DynamoDB write request units")
    assert reads.idle_quantity * 1e6 == pytest.approx(8760)
    assert reads.load_quantity * 1e6 == pytest.approx(8760 + 20_000)
    assert writes.idle_quantity == 0
    assert writes.load_quantity * 1e6 == pytest.approx(20_000)
    assert _line(est, "SNS publishes").load_quantity * 1e6 == pytest.approx(10_000)
    assert est.idle_total == pytest.approx(sum(li.idle_cost for li in est.lines))


def _service_stack() -> None:
    cluster = aws.ecs.Cluster("cluster")
    task = aws.ecs.TaskDefinition(
        "api-task",
        family="api",
        cpu="512",
        memory="1024",
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        container_definitions="[]",
    )
    aws.ecs.Service(
        "api",
        cluster=cluster.arn,
        task_definition=task.arn,
        desired_count=2,
        capacity_provider_strategies=[
            aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE", base=1, weight=0),
            aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE_SPOT", weight=1),
        ],
        opts=pulumi.ResourceOptions(depends_on=[task]),
    )
    aws.lb.LoadBalancer("alb", load_balancer_type="application", subnets=["subnet-a", "subnet-b"])


def test_fargate_reads_task_size_desired_count_and_capacity_providers(synth: SynthFn) -> None:
    est = estimate(synth(program=_service_stack), Load(1_000_000, 0), PRICES)
    # one on-demand task (base 1) and one Spot task (weight) of 0.5 vCPU / 1 GB for 730 h
    assert _line(est, "Fargate vCPU-hours").idle_quantity == 365
    assert round_money(_line(est, "Fargate vCPU-hours").idle_cost) == 16.99  # 365 x 0.04656
    assert round_money(_line(est, "Fargate GB-hours").idle_cost) == 3.73  # 730 x 0.00511
    assert round_money(_line(est, "Fargate Spot vCPU-hours").idle_cost) == 5.10  # 365 x 0.013968
    # the ALB: hours plus one public IPv4 address per subnet
    assert round_money(_line(est, "Application Load Balancer hours").idle_cost) == 16.43
    assert _line(est, "Public IPv4 addresses").idle_quantity == 2 * 730
    assert _line(est, "ALB capacity units (LCU)").idle_quantity == 0
    assert _line(est, "ALB capacity units (LCU)").load_quantity == pytest.approx(11.1111, rel=1e-4)


def test_dev_stack_prices_its_nat_instance_not_a_nat_gateway(synth: SynthFn) -> None:
    synthesis = synth("dev")
    est = estimate(synthesis, Load(1_000_000, 10_000), PRICES)
    assert synthesis.of_type("aws:ec2/natGateway:NatGateway") == []
    assert not [li for li in est.lines if li.item.startswith("NAT gateway")]
    # t4g.nano: 730 h x $0.0052 = $3.80; its 8 GB gp3 root volume: 8 x $0.0912 = $0.73
    assert round_money(_line(est, "EC2 t4g.nano hours").idle_cost) == 3.80
    assert _line(est, "EBS gp3 volumes").idle_quantity == 8
    assert "network-nat-0-eip" in _line(est, "Public IPv4 addresses").basis
    assert est.dominant("idle")[0].idle_cost == max(li.idle_cost for li in est.lines)
    assert est.load_total >= est.idle_total


def test_a_nat_instance_costs_a_tenth_of_a_nat_gateway(synth: SynthFn) -> None:
    gateway = estimate(synth("dev", overrides={"crowdfunding:natStrategy": "single"}), Load(0, 0), PRICES)
    instance = estimate(synth("dev"), Load(0, 0), PRICES)
    # gateway hours $43.07 out; instance hours $3.80 and its volume $0.73 in (the IPv4 stays)
    assert round_money(gateway.idle_total - instance.idle_total) == round_money(43.07 - 3.80 - 0.73)


def test_an_instance_type_without_a_price_is_named_not_priced_at_zero(synth: SynthFn) -> None:
    synthesis = synth("dev", overrides={"crowdfunding:natStrategy": "instance"})
    table = load_prices("ap-northeast-2")
    del table.prices["ec2_t4g_nano_hour"]
    est = estimate(synthesis, Load(0, 0), table)
    assert not [li for li in est.lines if li.item.startswith("EC2")]
    assert any("no price for t4g.nano (ec2_t4g_nano_hour)" in note for note in est.notes)


def test_dev_stack_idle_estimate_is_within_the_45_dollar_target(synth: SynthFn) -> None:
    est = estimate(synth("dev"), Load(1_000_000, 10_000), PRICES)
    assert est.idle_total <= 45, [(li.item, round_money(li.idle_cost)) for li in est.dominant("idle")]


def test_signed_code_packages_are_priced_as_s3_storage_for_the_upload_and_its_signed_copy(
    synth: SynthFn,
) -> None:
    synthesis = synth("dev")
    packages = synthesis.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    assert len(packages) == 11  # ten functions and the Powertools layer
    size = sum(Path(p.inputs["source"]["fileAsset"]).stat().st_size for p in packages)
    line = _line(estimate(synthesis, Load(0, 0), PRICES), "S3 storage for code packages")
    assert line.idle_quantity == line.load_quantity == pytest.approx(2 * size / 1024**3)
    assert line.price_key == "s3_standard_gb_month" and "books-auditor-package" in line.basis
