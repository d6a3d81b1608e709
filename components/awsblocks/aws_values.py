"""AWS's own enumerations and limits the components validate against, written once.

Each is AWS's value, not a choice of this library: where AWS changes one (a new retention period,
a new Fargate size, a new Lambda runtime), it changes here and every component and every stack
config check that validates against it follows.
"""

import re

LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts (`PutRetentionPolicy`), in days."""

PYTHON_RUNTIMES: tuple[str, ...] = ("python3.11", "python3.12", "python3.13")
"""Python runtimes AWS Lambda currently supports (not deprecated)."""

ARCHITECTURES: tuple[str, ...] = ("arm64", "x86_64")
"""Lambda instruction set architectures."""

MAX_SQS_RETENTION_SECONDS = 1_209_600
"""The longest an SQS queue keeps a message: 14 days."""

FARGATE_MEMORY_MB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
"""Fargate task sizes: CPU units → the memory (MiB) each allows."""

ACM_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
"""An ACM certificate ARN, in any partition."""


def fargate_memory_options(cpu: int) -> tuple[int, ...]:
    """The memory sizes (MiB) Fargate allows for `cpu` units; empty for a size Fargate lacks."""
    return FARGATE_MEMORY_MB.get(cpu, ())
