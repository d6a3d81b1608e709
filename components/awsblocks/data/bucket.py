"""Private S3 buckets, one way: the hardening every bucket of a component gets.

`private_bucket` declares a bucket with its companions as children of the calling component:
object ownership enforced (no ACLs), every public access blocked, versioning, default
encryption (SSE-KMS with the given key and a bucket key, or SSE-S3 where a service such as
ALB log delivery cannot use KMS), a lifecycle that expires objects, old versions and
incomplete uploads, and the bucket policy the caller renders from the bucket's ARN (which
should deny non-TLS access; `tls_only_statement` gives that statement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component

NONCURRENT_VERSION_DAYS = 7
INCOMPLETE_UPLOAD_DAYS = 7


def tls_only_statement(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def private_bucket(
    owner: Component,
    name: str,
    *,
    policy: Callable[[str], str],
    expiration_days: int,
    kms_key_arn: pulumi.Input[str] | None = None,
    force_destroy: bool = False,
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """Declare a hardened bucket `name` under `owner`; returns the bucket and its policy.

    `policy` renders the bucket policy JSON from the bucket ARN. Without `kms_key_arn` the
    default encryption is SSE-S3 (AES256).
    """
    bucket = aws.s3.Bucket(
        name, force_destroy=force_destroy, tags=owner.named_tags(name), opts=owner.child_opts()
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=owner.child_opts(),
    )
    public_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=owner.child_opts(),
    )
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=owner.child_opts(),
    )
    default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
    encryption = (
        default(sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
        if kms_key_arn is not None
        else default(sse_algorithm="AES256")
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=encryption,
                bucket_key_enabled=True if kms_key_arn is not None else None,
            )
        ],
        opts=owner.child_opts(),
    )
    lifecycle = aws.s3  # the argument classes' names are long
    lifecycle.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=[
            lifecycle.BucketLifecycleConfigurationRuleArgs(
                id=f"expire-after-{expiration_days}-days",
                status="Enabled",
                filter=lifecycle.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=lifecycle.BucketLifecycleConfigurationRuleExpirationArgs(days=expiration_days),
                noncurrent_version_expiration=lifecycle.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_VERSION_DAYS
                ),
                abort_incomplete_multipart_upload=lifecycle.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=INCOMPLETE_UPLOAD_DAYS
                ),
            )
        ],
        opts=owner.child_opts(),
    )
    bucket_policy = aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        policy=bucket.arn.apply(policy),
        opts=owner.child_opts(depends_on=[public_block]),
    )
    return bucket, bucket_policy
