"""`Function`: a Lambda function without a trigger (other functions invoke it), and what every
function kind shares (`FunctionArgs`, the declaration of role, log group, code and function).

Its role holds only the `awsblocks.security.iam.Grant`s you declare, plus writing its own
encrypted log group. With `FunctionArgs.code_signing` (a `CodeSigning`'s `ref`) the archive is
uploaded, signed by AWS Signer and deployed from the signed copy under an enforcing code signing
configuration; without it the function deploys unsigned, which policy rules report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from awsblocks.aws_values import ARCHITECTURES, LOG_RETENTION_DAYS, PYTHON_RUNTIMES
from awsblocks.core import Component, ComponentArgs, assume_role_policy
from awsblocks.functions.code_signing import CodeSigningRef, check_signable, sign_archive
from awsblocks.messaging.queue import QueueRef
from awsblocks.security.encryption_key import own_key
from awsblocks.security.iam import (
    Grant,
    kms_decrypt,
    kms_use,
    logs_write,
    policy_document,
    sqs_consume,
    sqs_send,
)

XRAY_WRITE = Grant(
    "XRayTraces", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), ("*",), any_resource=True
)
"""Active tracing: the role uploads trace segments (X-Ray has no resource-level permissions)."""


@dataclass(kw_only=True)
class FunctionArgs(ComponentArgs):
    """What every function of this module takes.

    Attributes:
        code: The deployment package: a path to a .zip file or a directory, or a `pulumi.Archive`.
        handler: Entry point, "module.function".
        runtime: A current Python runtime: python3.11, python3.12 or python3.13. Default python3.12.
        architecture: "arm64" (cheaper per GB-second) or "x86_64"; layers must match. Default arm64.
        timeout_seconds: Function timeout, 1 to 900. Default 30.
        memory_mb: Memory, 128 to 10240 MB. Default 256.
        environment: Environment variables (values may be Outputs). Default none.
        layers: Layer version ARNs. Default none.
        grants: The only permissions the role holds (`awsblocks.security.iam` grants: tables, topics,
            queues, functions and the KMS keys encrypting them) besides writing its own logs
            (and consuming its queue, for `QueueFunction`). Default none.
        log_retention_days: Retention of the function's own log group. Default 30.
        log_kms_key_arn: CMK for the log group (its policy must allow CloudWatch Logs).
            Default: the component creates one with rotation.
        reserved_concurrency: Reserved concurrent executions: capacity no other function of the
            account can take (and the function's ceiling). Default none (unreserved).
        tracing: Record X-Ray traces (`tracing_config` Active, and the role may upload segments).
            The service records each invocation; no SDK runs in the function, so no cold-start
            cost. Default True.
        environment_kms_key_arn: CMK that encrypts the environment variables at rest (the role
            may decrypt with it). Default: the log group's key (`log_kms_key_arn`, or the key the
            component creates for its logs), so no extra key is created.
        description: Shown in the Lambda console. Default empty.
        code_signing: The stack's `CodeSigning` (its `ref`). When given, `code`
            must be a .zip path: it is uploaded to the signing bucket, that object version is
            signed by an AWS Signer job, and the function deploys from the SIGNED object with the
            enforcing code signing configuration attached (Lambda then refuses any package or
            layer the profile did not sign: every layer must be a `SignedLayer`). Default none
            (unsigned; the policy pack's `lambda-code-signing` rule flags it).
        tags: Tags for every taggable child (the component adds `component`).
    """

    code: str | pulumi.Archive
    handler: str
    runtime: str = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    timeout_seconds: int = 30
    memory_mb: int = 256
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    layers: Sequence[pulumi.Input[str]] = ()
    grants: Sequence[Grant] = ()
    log_retention_days: int = 30
    log_kms_key_arn: pulumi.Input[str] | None = None
    reserved_concurrency: int | None = None
    tracing: bool = True
    environment_kms_key_arn: pulumi.Input[str] | None = None
    description: str = ""
    code_signing: CodeSigningRef | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_function_args(kind: str, name: str, args: FunctionArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""
    where = f"{kind} {name}"
    if args.runtime not in PYTHON_RUNTIMES:
        raise ValueError(f"{where}: runtime={args.runtime!r}; allowed: {', '.join(PYTHON_RUNTIMES)}")
    if args.architecture not in ARCHITECTURES:
        raise ValueError(f"{where}: architecture={args.architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    if not 1 <= args.timeout_seconds <= 900:
        raise ValueError(f"{where}: timeout_seconds={args.timeout_seconds}; allowed: 1 to 900")
    if not 128 <= args.memory_mb <= 10240:
        raise ValueError(f"{where}: memory_mb={args.memory_mb}; allowed: 128 to 10240")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{where}: log_retention_days={args.log_retention_days}; allowed: "
            + ", ".join(map(str, LOG_RETENTION_DAYS))
        )
    if args.reserved_concurrency is not None and args.reserved_concurrency < 0:
        raise ValueError(
            f"{where}: reserved_concurrency={args.reserved_concurrency}; allowed: 0 or more, or None"
        )
    if "." not in args.handler:
        raise ValueError(f"{where}: handler={args.handler!r}; allowed: 'module.function'")
    if isinstance(args.code, str) and not Path(args.code).exists():
        raise ValueError(f"{where}: code={args.code!r} does not exist; allowed: a .zip file or a directory")
    if args.code_signing is not None:
        check_signable(where, args.code)
    for grant in args.grants:
        if not isinstance(grant, Grant):
            raise ValueError(
                f"{where}: grants has {grant!r}; allowed: awsblocks.security.iam.Grant objects "
                "(iam.dynamodb_read_write(...), iam.sns_publish(...), …)"
            )


@dataclass
class _Declared:
    function: aws.lambda_.Function
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup


def _declare_function(
    component: Component,
    name: str,
    args: FunctionArgs,
    *,
    consumed: QueueRef | None = None,
    dead_letter: QueueRef | None = None,
) -> _Declared:
    """Log group, execution role with exactly the declared grants, and the function."""
    if args.log_kms_key_arn is None:
        log_key = own_key(component, f"{name}-log-key", f"log group of function {name}", [], logs=True)
    else:
        log_key = pulumi.Output.from_input(args.log_kms_key_arn)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name_prefix=f"/aws/lambda/{name}-",
        retention_in_days=args.log_retention_days,
        kms_key_id=log_key,
        tags=component.named_tags(f"{name}-logs"),
        opts=component.child_opts(),
    )
    role = aws.iam.Role(
        f"{name}-role",
        description=f"Execution role of function {name}: only its declared grants",
        assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
        tags=component.named_tags(f"{name}-role"),
        opts=component.child_opts(),
    )
    environment_key = (
        pulumi.Output.from_input(args.environment_kms_key_arn)
        if args.environment_kms_key_arn is not None
        else log_key
    )
    grants = [*args.grants, logs_write(log_group.arn, label="OwnLogGroup")]
    if args.environment:
        # The execution role decrypts its own environment at start (KMSAccessDeniedException otherwise).
        grants.append(kms_decrypt([environment_key], label="Environment"))
    if args.tracing:
        grants.append(XRAY_WRITE)
    if consumed is not None:
        grants.append(sqs_consume(consumed.arn, label="Source"))
        if consumed.kms_key_arn is not None:
            grants.append(kms_decrypt([consumed.kms_key_arn], label="SourceQueue"))
    if dead_letter is not None:
        grants.append(sqs_send(dead_letter.arn, label="DeadLetter"))
        if dead_letter.kms_key_arn is not None:
            grants.append(kms_use([dead_letter.kms_key_arn], label="DeadLetter"))
    policy = aws.iam.RolePolicy(
        f"{name}-permissions",
        role=role.id,
        policy=policy_document(grants),
        opts=component.child_opts(),
    )
    package: dict[str, Any]
    if args.code_signing is not None:
        # Deploy what Signer signed: the signed copy of exactly this upload, under the enforcing config.
        signed = sign_archive(component, name, str(args.code), args.code_signing)
        package = {
            "s3_bucket": signed.bucket,
            "s3_key": signed.key,
            "code_signing_config_arn": args.code_signing.config_arn,
        }
    else:
        package = {
            "code": args.code if isinstance(args.code, pulumi.Archive) else pulumi.FileArchive(args.code)
        }
    function = aws.lambda_.Function(
        f"{name}-function",
        **package,
        handler=args.handler,
        runtime=args.runtime,
        architectures=[args.architecture],
        role=role.arn,
        timeout=args.timeout_seconds,
        memory_size=args.memory_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment))
        if args.environment
        else None,
        kms_key_arn=environment_key if args.environment else None,
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(
            mode="Active" if args.tracing else "PassThrough"
        ),
        layers=list(args.layers) or None,
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=log_group.name),
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=dead_letter.arn)
        if dead_letter is not None
        else None,
        reserved_concurrent_executions=args.reserved_concurrency,
        description=args.description or None,
        tags=component.named_tags(name),
        opts=component.child_opts(depends_on=[policy, log_group]),
    )
    return _Declared(function=function, role=role, policy=policy, log_group=log_group)


class Function(Component):
    """A Lambda function with no trigger of its own (invoked by other functions or services).

    Same log group and least-privilege role as the triggered kinds. Grant callers
    `iam.lambda_invoke(fn.function_arn)`. Outputs: `function_name`, `function_arn`, `role_arn`,
    `log_group_name`.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_function_args("Function", name, args)
        super().__init__("Function", name, args.tags, opts, name_prefix=args.name_prefix)
        declared = _declare_function(self, name, args)
        self.function_name = declared.function.name
        self.function_arn = declared.function.arn
        self.role_arn = declared.role.arn
        self.log_group_name = declared.log_group.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
            }
        )
