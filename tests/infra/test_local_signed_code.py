"""The embedded system runs every function from its archive, though the program deploys signed S3 objects.

The emulator has no AWS Signer: `EmulatorMocks` follows each package from its upload, through the
signing job's signed copy, to the function deployed from that copy (toolchain/embedded/mocks.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockResourceArgs

from lambdas.specs import catalog
from toolchain.embedded.mocks import EmulatorMocks
from toolchain.project import synthesize

REGION = "ap-northeast-2"
UNREACHABLE = "http://127.0.0.1:9"
"""No emulator is needed: these tests never let the mocks call one."""


class OfflineEmulatorMocks(EmulatorMocks):
    """`EmulatorMocks` whose emulator-backed creations are answered offline (functions still recorded)."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE, REGION)
        self._creators = {
            **{token: self._offline for token in self._creators},
            "aws:lambda/function:Function": self._function,
        }

    def _offline(self, args: MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        physical_id, state = self.offline.new_resource(args)
        return str(physical_id), state


def test_every_local_function_runs_the_archive_its_signed_object_came_from() -> None:
    mocks = OfflineEmulatorMocks()
    s = synthesize("local", mocks=mocks)
    functions = s.of_type("aws:lambda/function:Function")
    assert functions and all(
        "code" not in f.inputs and f.inputs["s3Key"].startswith("signed/") for f in functions
    )
    archives = sorted(Path(f.archive).name for f in mocks.deployment.functions.values())
    assert archives == sorted(f"{name}.zip" for name in catalog.function_names())
    for function in mocks.deployment.functions.values():
        assert Path(function.archive).is_file(), function.name


def test_a_function_from_an_object_nobody_uploaded_has_no_archive(tmp_path: Path) -> None:
    mocks = OfflineEmulatorMocks()
    archive = tmp_path / "fn.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    upload = {"bucket": "b", "key": "unsigned/function/fn.zip", "source": pulumi.FileAsset(str(archive))}
    _, state = mocks.new_resource(
        MockResourceArgs("aws:s3/bucketObjectv2:BucketObjectv2", "fn-package", upload, custom=True)
    )
    job_inputs = {
        "profileName": "p",
        "source": {"s3": {"bucket": "b", "key": "unsigned/function/fn.zip", "version": state["versionId"]}},
        "destination": {"s3": {"bucket": "b", "prefix": "signed/"}},
    }
    _, job = mocks.new_resource(
        MockResourceArgs("aws:signer/signingJob:SigningJob", "fn-signing", job_inputs, custom=True)
    )
    (signed,) = job["signedObjects"][0]["s3s"]
    base = {"handler": "fn.handler", "runtime": "python3.11", "role": "r"}
    for name, key in (("signed", signed["key"]), ("stranger", "signed/unknown.zip")):
        function = {**base, "name": name, "s3Bucket": "b", "s3Key": key}
        mocks.new_resource(MockResourceArgs("aws:lambda/function:Function", name, function, custom=True))
    assert mocks.deployment.functions["signed"].archive == str(archive)
    # The runtime refuses a function with no archive (FileNotFoundError naming it) rather than guess.
    assert mocks.deployment.functions["stranger"].archive == ""
