"""Code signing: one bucket, profile and enforcing config; functions and layers deploy what Signer signed."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
from awsblocks.functions.code_signing import CodeSigning, CodeSigningArgs, CodeSigningRef, profile_name_prefix
from awsblocks.functions.function import Function, FunctionArgs
from awsblocks.functions.signed_layer import SignedLayer, SignedLayerArgs
from awsblocks.testing import DeclaredResource, OfflineMocks
from pulumi.runtime.mocks import MockResourceArgs

from tests.conftest import TEST_REGION, SynthFn


def out(resource: DeclaredResource) -> dict[str, Any]:
    """The outputs the mocks give a resource, computed the same way."""
    return OfflineMocks(TEST_REGION).new_resource(
        MockResourceArgs(resource.type, resource.name, resource.inputs, custom=True)
    )[1]


def signed_copy(job: DeclaredResource) -> tuple[str, str]:
    (signed,) = job.state["signedObjects"]
    (s3,) = signed["s3s"]
    return s3["bucket"], s3["key"]


@pytest.fixture
def package(tmp_path: Path) -> str:
    """A shop's order handler as a .zip."""
    path = tmp_path / "orders.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orders.py", "def handler(event, context):\n    return None\n")
    return str(path)


def test_code_signing_is_a_versioned_private_bucket_a_lambda_profile_and_an_enforcing_config(
    synth: SynthFn,
) -> None:
    s = synth(program=lambda: CodeSigning("shop-signing", CodeSigningArgs(signature_validity_days=365)))
    bucket = s.named("shop-signing-artifacts", "aws:s3/bucket:Bucket")
    assert s.named("shop-signing-artifacts-versioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    block = s.named("shop-signing-artifacts-public-block").inputs
    assert all(
        block[k]
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    encryption = s.named("shop-signing-artifacts-encryption").inputs["rules"][0]
    assert encryption["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert '"aws:SecureTransport": "false"' in s.named("shop-signing-artifacts-policy").inputs["policy"]
    (profile,) = s.of_type("aws:signer/signingProfile:SigningProfile")
    assert profile.inputs["platformId"] == "AWSLambda-SHA384-ECDSA"
    assert profile.inputs["namePrefix"] == "shop_signing_"
    assert profile.inputs["signatureValidityPeriod"] == {"type": "DAYS", "value": 365}
    (config,) = s.of_type("aws:lambda/codeSigningConfig:CodeSigningConfig")
    # Lambda's default is Warn: a package nobody signed would still deploy.
    assert config.inputs["policies"] == {"untrustedArtifactOnDeployment": "Enforce"}
    assert config.inputs["allowedPublishers"] == {"signingProfileVersionArns": [out(profile)["versionArn"]]}
    assert bucket.inputs.get("forceDestroy") is False


def test_a_signed_function_uploads_its_zip_signs_that_version_and_deploys_the_signed_copy(
    synth: SynthFn, package: str
) -> None:
    def program() -> None:
        signing = CodeSigning("shop-signing", CodeSigningArgs())
        Function("orders", FunctionArgs(code=package, handler="orders.handler", code_signing=signing.ref))

    s = synth(program=program)
    upload = s.named("orders-package", "aws:s3/bucketObjectv2:BucketObjectv2")
    bucket = s.named("shop-signing-artifacts", "aws:s3/bucket:Bucket")
    assert upload.inputs["source"] == {"fileAsset": package}
    assert upload.inputs["bucket"] == bucket.id and upload.inputs["key"] == "unsigned/function/orders.zip"
    job = s.named("orders-signing", "aws:signer/signingJob:SigningJob")
    (profile,) = s.of_type("aws:signer/signingProfile:SigningProfile")
    assert job.inputs["profileName"] == out(profile)["name"]
    assert job.inputs["source"]["s3"] == {
        "bucket": bucket.id,
        "key": "unsigned/function/orders.zip",
        "version": upload.state["versionId"],
    }
    assert job.inputs["destination"]["s3"] == {"bucket": bucket.id, "prefix": "signed/"}
    function = s.named("orders-function", "aws:lambda/function:Function").inputs
    (config,) = s.of_type("aws:lambda/codeSigningConfig:CodeSigningConfig")
    assert "code" not in function
    assert (function["s3Bucket"], function["s3Key"]) == signed_copy(job)
    assert function["codeSigningConfigArn"] == out(config)["arn"]


def test_an_unsigned_function_deploys_its_archive_with_no_signing_resources(
    synth: SynthFn, package: str
) -> None:
    s = synth(program=lambda: Function("orders", FunctionArgs(code=package, handler="orders.handler")))
    function = s.named("orders-function", "aws:lambda/function:Function").inputs
    assert function["code"] == {"fileArchive": package}
    assert "codeSigningConfigArn" not in function and "s3Key" not in function
    assert not s.of_type("aws:signer/signingJob:SigningJob")


def test_a_signed_layer_is_published_from_the_signed_copy(synth: SynthFn, package: str) -> None:
    def program() -> None:
        signing = CodeSigning("shop-signing", CodeSigningArgs())
        SignedLayer(
            "shop-libs",
            SignedLayerArgs(archive=package, code_signing=signing.ref, compatible_runtimes=["python3.12"]),
        )

    s = synth(program=program)
    job = s.named("shop-libs-signing", "aws:signer/signingJob:SigningJob")
    assert s.named("shop-libs-package").inputs["key"] == "unsigned/layer/shop-libs.zip"
    layer = s.named("shop-libs-layer", "aws:lambda/layerVersion:LayerVersion").inputs
    assert (layer["s3Bucket"], layer["s3Key"]) == signed_copy(job)
    assert layer["layerName"] == "shop-libs" and layer["compatibleRuntimes"] == ["python3.12"]


def _ref() -> CodeSigningRef:
    value = pulumi.Output.from_input("x")
    return CodeSigningRef(value, value, value, value)


def test_signing_refuses_code_that_is_not_a_zip_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        Function("orders", FunctionArgs(code=str(tmp_path), handler="orders.handler", code_signing=_ref()))
    assert str(caught.value).startswith(
        f"Function orders: code={str(tmp_path)!r} with code_signing; allowed: a path"
    )
    with pytest.raises(ValueError, match=r"allowed: a path to a \.zip file"):
        SignedLayer("libs", SignedLayerArgs(archive=str(tmp_path / "missing.zip"), code_signing=_ref()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (CodeSigningArgs(signature_validity_days=0), "signature_validity_days=0; allowed: 1 to 4000"),
        (CodeSigningArgs(artifact_retention_days=0), "artifact_retention_days=0; allowed: 1 or more"),
    ],
)
def test_code_signing_refuses_out_of_range_arguments(args: CodeSigningArgs, message: str) -> None:
    with pytest.raises(ValueError, match=f"CodeSigning shop: {message}"):
        CodeSigning("shop", args)


def test_profile_prefixes_keep_only_what_signer_allows() -> None:
    assert profile_name_prefix("code-signing") == "code_signing_"
    assert len(profile_name_prefix("x" * 80)) <= 38
    assert all(c.isalnum() or c == "_" for c in profile_name_prefix("a.b-c d"))
