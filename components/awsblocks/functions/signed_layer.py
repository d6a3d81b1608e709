"""`SignedLayer`: a Lambda layer published from the copy a `CodeSigning` profile signed.

With enforcement on, every layer a function uses must be signed by an allowed profile too: a
public layer nobody signed for you is refused, so a stack publishes its own.

Example::

    libs = SignedLayer("shop-libs", SignedLayerArgs(archive="build/libs.zip", code_signing=signing.ref))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs
from awsblocks.functions.code_signing import CodeSigningRef, check_signable, sign_archive


@dataclass
class SignedLayerArgs(ComponentArgs):
    """Arguments of `SignedLayer`.

    Attributes:
        archive: Path to the layer's .zip (Python packages under `python/`).
        code_signing: The stack's `CodeSigningRef`: the layer is signed by its profile.
        compatible_runtimes: Runtimes the layer declares. Default none.
        compatible_architectures: Architectures the layer declares. Default none.
        description: Shown in the Lambda console. Default empty.
        tags: Tags for the uploaded object (layers take no tags).
    """

    archive: str
    code_signing: CodeSigningRef
    compatible_runtimes: Sequence[str] = ()
    compatible_architectures: Sequence[str] = ()
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


class SignedLayer(Component):
    """A Lambda layer published from a package signed by the stack's profile. Output: `arn` (the
    layer version ARN to pass in `FunctionArgs.layers`)."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SignedLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        archive = check_signable(f"SignedLayer {name}", args.archive)
        super().__init__("SignedLayer", name, args.tags, opts, name_prefix=args.name_prefix)
        signed = sign_archive(self, name, archive, args.code_signing, kind="layer")
        layer = aws.lambda_.LayerVersion(
            f"{name}-layer",
            layer_name=name,
            s3_bucket=signed.bucket,
            s3_key=signed.key,
            compatible_runtimes=list(args.compatible_runtimes) or None,
            compatible_architectures=list(args.compatible_architectures) or None,
            description=args.description or None,
            opts=self.child_opts(),
        )
        self.arn = layer.arn
        self.register_outputs({"arn": layer.arn})
