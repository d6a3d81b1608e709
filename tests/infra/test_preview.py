"""`make preview`: the offline tree and counts for every committed stack."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from toolchain.preview import main
from toolchain.project import REPO_ROOT, stack_names


def count_of(output: str, type_name: str) -> int:
    match = re.search(rf"^\s+(\d+)\s+{re.escape(type_name)}$", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("stack", stack_names())
def test_every_committed_stack_previews(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([stack]) == 0
    out = capsys.readouterr().out
    assert "pulumi:pulumi:Stack" in out and f"crowdfunding-{stack}" in out
    assert "├─ awsblocks:index:Network" in out or "└─ awsblocks:index:Network" in out
    total = int(re.search(r"\+ (\d+) to create", out).group(1))  # type: ignore[union-attr]
    listed = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+aws:", out, re.MULTILINE))
    assert total > listed > 0


def test_dev_and_prod_nat_counts(capsys: pytest.CaptureFixture[str]) -> None:
    main(["dev"])
    dev = capsys.readouterr().out
    main(["prod"])
    prod = capsys.readouterr().out
    # dev: one NAT instance behind its own interface and Elastic IP, no NAT gateway
    assert (count_of(dev, "aws:ec2:NatGateway"), count_of(dev, "aws:ec2:Eip")) == (0, 1)
    assert (count_of(dev, "aws:ec2:Instance"), count_of(dev, "aws:ec2:NetworkInterface")) == (1, 1)
    assert (count_of(prod, "aws:ec2:NatGateway"), count_of(prod, "aws:ec2:Eip")) == (3, 3)
    assert (count_of(dev, "aws:ec2:Subnet"), count_of(prod, "aws:ec2:Subnet")) == (4, 6)


def test_a_preview_says_which_values_it_filled_in_for_the_user(capsys: pytest.CaptureFixture[str]) -> None:
    main(["prod"])
    prod = capsys.readouterr().out
    assert "Pulumi.prod.yaml leaves crowdfunding:alertEmail, crowdfunding:certificateArn" in prod
    assert "`pulumi up` refuses the stack until you set them" in prod
    main(["dev"])
    assert "stand-ins" not in capsys.readouterr().out


def test_unknown_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staging"]) == 2
    assert "no stack file Pulumi.staging.yaml; committed stacks: " in capsys.readouterr().err


def test_make_preview_runs_from_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "toolchain.preview", "dev"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "to create" in result.stdout
