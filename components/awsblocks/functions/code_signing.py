"""Lambda code signing with AWS Signer: the pieces a stack declares once and every function shares.

`CodeSigning` declares
- a private artifact bucket (`awsblocks.data.bucket.private_bucket`: versioned, encrypted, public
  access blocked, TLS only): deployment packages are uploaded there, and AWS Signer writes the
  signed copies beside them under `signed/`. Signer signs one *version* of an object, so the
  bucket must be versioned;
- an AWS Signer signing profile on the `AWSLambda-SHA384-ECDSA` platform (Signer itself is free);
- a Lambda code signing configuration that trusts exactly that profile's version and
  **enforces** it: Lambda refuses a package (or a layer) that this profile did not sign, or that
  was changed after signing (the API's default is only to warn).

Every function component (`awsblocks.functions`) takes it as `FunctionArgs.code_signing`: each uploads its
archive, signs that exact object version with a `signer.SigningJob` and deploys from the signed
object with the configuration attached. `SignedLayer` publishes a Lambda layer the same way:
with enforcement on, every layer a function uses must be signed by an allowed profile too, so a
public layer nobody signed for you cannot be attached.

AWS: https://docs.aws.amazon.com/lambda/latest/dg/configuration-codesigning.html and
https://docs.aws.amazon.com/signer/latest/developerguide/lambda-workflow.html

Example::

    signing = CodeSigning("signing", CodeSigningArgs())
    Function("worker", FunctionArgs(code="build/worker.zip", handler="worker.handler",
                                    code_signing=signing.ref))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs
from awsblocks.data.bucket import private_bucket, tls_only_statement

PLATFORM_ID = "AWSLambda-SHA384-ECDSA"
"""The Signer platform for Lambda packages and layers."""
ENFORCE = "Enforce"
SIGNED_PREFIX = "signed/"
"""Where Signer writes the signed copies (the uploads keep their own `unsigned/` prefix)."""
UNSIGNED_PREFIX = "unsigned/"
DEFAULT_ARTIFACT_RETENTION_DAYS = 365
_PROFILE_PREFIX = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class CodeSigningRef:
    """What a function needs to deploy signed code: where to upload, who signs, what enforces.

    Attributes:
        bucket: Name of the versioned artifact bucket (uploads and signed copies).
        profile_name: The AWS Signer profile that signs (`SigningJob.profile_name`).
        profile_version_arn: The profile version the configuration trusts.
        config_arn: The Lambda code signing configuration (`code_signing_config_arn`).
    """

    bucket: pulumi.Output[str]
    profile_name: pulumi.Output[str]
    profile_version_arn: pulumi.Output[str]
    config_arn: pulumi.Output[str]


@dataclass
class CodeSigningArgs(ComponentArgs):
    """Arguments of `CodeSigning`.

    Attributes:
        signature_validity_days: How long a signature stays valid (Lambda refuses to deploy a
            package whose signature expired). Default none: Signer's default (135 months).
        artifact_retention_days: Lifecycle expiry of uploaded and signed packages. Lambda keeps
            its own copy of deployed code, so an expired object only matters to a later
            `pulumi refresh` (which re-uploads and re-signs it). Default 365.
        kms_key_arn: CMK for the bucket's default encryption. Default none: SSE-S3, so Signer
            and Lambda read the packages with the deployer's S3 permissions alone.
        force_destroy: Let `pulumi destroy` delete a bucket that still holds packages. Default False.
        tags: Tags for every taggable child (the component adds `component`).
    """

    signature_validity_days: int | None = None
    artifact_retention_days: int = DEFAULT_ARTIFACT_RETENTION_DAYS
    kms_key_arn: pulumi.Input[str] | None = None
    force_destroy: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_code_signing_args(name: str, args: CodeSigningArgs) -> None:
    """Raise ValueError naming the argument, the value and what is allowed."""
    if args.signature_validity_days is not None and not 1 <= args.signature_validity_days <= 4_000:
        raise ValueError(
            f"CodeSigning {name}: signature_validity_days={args.signature_validity_days}; "
            "allowed: 1 to 4000 (Signer's maximum is 135 months), or None for Signer's default"
        )
    if args.artifact_retention_days < 1:
        raise ValueError(
            f"CodeSigning {name}: artifact_retention_days={args.artifact_retention_days}; allowed: 1 or more"
        )


def profile_name_prefix(name: str) -> str:
    """A Signer profile name prefix from a logical name: Signer allows only letters, digits and
    `_` (at most 38 for a prefix), where Pulumi's auto-names would put a `-`."""
    return (_PROFILE_PREFIX.sub("_", name)[:37] + "_").lstrip("_") or "signing_"


class CodeSigning(Component):
    """Artifact bucket, Signer profile and an enforcing code signing configuration.

    Outputs: `bucket`, `profile_name`, `profile_version_arn`, `config_arn`. Python helper: `ref`
    (a `CodeSigningRef` to pass as `FunctionArgs.code_signing`).
    """

    bucket: pulumi.Output[str]
    profile_name: pulumi.Output[str]
    profile_version_arn: pulumi.Output[str]
    config_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CodeSigningArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_code_signing_args(name, args)
        super().__init__("CodeSigning", name, args.tags, opts, name_prefix=args.name_prefix)
        bucket, _ = private_bucket(
            self,
            f"{name}-artifacts",
            policy=lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [tls_only_statement(arn)]}),
            expiration_days=args.artifact_retention_days,
            kms_key_arn=args.kms_key_arn,
            force_destroy=args.force_destroy,
        )
        profile = aws.signer.SigningProfile(
            f"{name}-profile",
            name_prefix=profile_name_prefix(name),
            platform_id=PLATFORM_ID,
            signature_validity_period=aws.signer.SigningProfileSignatureValidityPeriodArgs(
                type="DAYS", value=args.signature_validity_days
            )
            if args.signature_validity_days is not None
            else None,
            tags=self.named_tags(f"{name}-profile"),
            opts=self.child_opts(),
        )
        config = aws.lambda_.CodeSigningConfig(
            f"{name}-config",
            description=f"Only packages signed by Signer profile {name} deploy",
            allowed_publishers=aws.lambda_.CodeSigningConfigAllowedPublishersArgs(
                signing_profile_version_arns=[profile.version_arn]
            ),
            policies=aws.lambda_.CodeSigningConfigPoliciesArgs(untrusted_artifact_on_deployment=ENFORCE),
            tags=self.named_tags(f"{name}-config"),
            opts=self.child_opts(),
        )
        self.bucket = bucket.id
        self.profile_name = profile.name
        self.profile_version_arn = profile.version_arn
        self.config_arn = config.arn
        self._ref = CodeSigningRef(bucket.id, profile.name, profile.version_arn, config.arn)
        self.register_outputs(
            {
                "bucket": self.bucket,
                "profile_name": self.profile_name,
                "profile_version_arn": self.profile_version_arn,
                "config_arn": self.config_arn,
            }
        )

    @property
    def ref(self) -> CodeSigningRef:
        """What a function or layer needs to be signed (Python helper: `FunctionArgs.code_signing`)."""
        return self._ref


@dataclass(frozen=True)
class SignedObject:
    """An uploaded package and its signed copy.

    Attributes:
        upload: The uploaded (unsigned) object.
        job: The signing job over exactly `upload`'s version.
        bucket: Bucket of the signed copy (from the job's `signed_objects`).
        key: Key of the signed copy (from the job's `signed_objects`).
    """

    upload: aws.s3.BucketObjectv2
    job: aws.signer.SigningJob
    bucket: pulumi.Output[str]
    key: pulumi.Output[str]


def sign_archive(
    owner: Component, name: str, archive: str, signing: CodeSigningRef, *, kind: str = "function"
) -> SignedObject:
    """Upload the .zip at `archive` under `unsigned/` and sign that object version.

    Why the deterministic zip is the source: Pulumi uploads again only when the file's bytes
    change, so an unchanged package keeps its object version, its signing job and its deployed
    code (no new signature, no redeploy); a changed one gets a new version, a new job (the job's
    source is replaced) and a new signed key.
    """
    upload = aws.s3.BucketObjectv2(
        f"{name}-package",
        bucket=signing.bucket,
        key=f"{UNSIGNED_PREFIX}{kind}/{name}.zip",
        source=pulumi.FileAsset(archive),
        content_type="application/zip",
        tags=owner.named_tags(f"{name}-package"),
        opts=owner.child_opts(),
    )
    job = aws.signer.SigningJob(
        f"{name}-signing",
        profile_name=signing.profile_name,
        source=aws.signer.SigningJobSourceArgs(
            s3=aws.signer.SigningJobSourceS3Args(
                bucket=upload.bucket, key=upload.key, version=upload.version_id
            )
        ),
        destination=aws.signer.SigningJobDestinationArgs(
            s3=aws.signer.SigningJobDestinationS3Args(bucket=signing.bucket, prefix=SIGNED_PREFIX)
        ),
        opts=owner.child_opts(),
    )
    signed = job.signed_objects.apply(lambda objects: _signed_location(name, objects))
    return SignedObject(upload, job, signed[0], signed[1])


def _signed_location(
    name: str, objects: Sequence[aws.signer.outputs.SigningJobSignedObject]
) -> tuple[str, str]:
    """(bucket, key) of the one signed copy a finished job reports."""
    for signed in objects or []:
        for s3 in signed.s3s or []:
            if s3.bucket and s3.key:
                return s3.bucket, s3.key
    raise ValueError(
        f"signing job {name}-signing reported no signed S3 object; check the job in the Signer console"
    )


def check_signable(where: str, code: object) -> str:
    """The archive path of signable code; ValueError naming what is allowed otherwise."""
    if isinstance(code, str) and code.endswith(".zip") and Path(code).is_file():
        return code
    raise ValueError(
        f"{where}: code={code!r} with code_signing; allowed: a path to a .zip file (Signer signs one "
        "zip object; build it deterministically so an unchanged package is not signed again)"
    )
