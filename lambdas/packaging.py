"""Deployment archives for the functions: deterministic zips the infrastructure and tests share.

An archive holds `lambdas/__init__.py`, `lambdas/shared/**`, `lambdas/<function>.py` and the spec
the handler reads at cold start (`lambdas/specs/__init__.py`, `model.py`, `<function>.py`), nothing
else (no boto3, no Powertools, no tests, no other function or its spec, no bytecode). Entries are sorted,
timestamps fixed at 1980-01-01, permissions 0644, compression fixed, so the same source gives a
byte-identical archive and an unchanged function's hash does not change (no redeploy).

Powertools comes from a layer of the release requirements.lock pins: the stack builds it from the
installed files and signs it like the functions (infra/payment_chain.py; code signing refuses
unsigned layers, and AWS's public Powertools layers are unsigned). With code signing opted out,
the AWS-published layer of that same release is used instead. boto3 comes from the Lambda runtime.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from lambdas.specs import catalog

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent

SPEC_FILES = ("__init__.py", "model.py")
"""What every handler's `from lambdas.specs.<function> import SPEC` needs besides its own spec."""

RUNTIME = "python3.11"
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")

# Powertools for AWS Lambda (Python) V3 public layer. Source: the Powertools docs' install page
# ("Lambda Layer" table, https://docs.aws.amazon.com/powertools/python/latest/#lambda-layer):
# arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python_version}-{arch}:{n}
# (China: account 498634801083 in cn-north-1, partition aws-cn). Which layer version {n} ships
# which library release is not documented as a table; Powertools publishes it per release as a
# public SSM parameter (`powertools_layer_ssm_parameter()`, written by the project's release
# workflow `.github/workflows/update_ssm.yml`). The program resolves that parameter for the version
# requirements.lock pins, so the functions run the very Powertools the tests ran.
LOCK_FILE = ROOT / "requirements.lock"
POWERTOOLS_DISTRIBUTION = "aws-lambda-powertools"
_POWERTOOLS_ACCOUNTS = {"aws": "017000801446", "aws-cn": "498634801083"}


def pinned_version(distribution: str, lock: Path = LOCK_FILE) -> str:
    """The exact version `lock` pins for `distribution` (names compared as pip normalizes them)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    try:
        lines = lock.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{lock} cannot be read ({exc}); fix: run `make lock` to create it") from exc
    for line in lines:
        name, separator, version = line.split("#", 1)[0].strip().partition("==")
        if separator and re.sub(r"[-_.]+", "-", name).lower() == wanted:
            return version.strip()
    raise ValueError(f"{lock} pins no {distribution}; fix: add it to requirements.in and run `make lock`")


POWERTOOLS_VERSION = pinned_version(POWERTOOLS_DISTRIBUTION)
"""The Powertools release the functions run: the one the tests run, from requirements.lock."""
ARCHITECTURES = ("x86_64", "arm64")


def handler_of(function_name: str) -> str:
    """The Lambda `handler` setting of a function."""
    _check(function_name)
    return f"lambdas.{function_name}.handler"


def source_files(function_name: str) -> list[tuple[str, Path]]:
    """(archive path, file) pairs of a function's archive, sorted by archive path."""
    _check(function_name)
    files = [
        ("lambdas/__init__.py", PACKAGE_DIR / "__init__.py"),
        (f"lambdas/{function_name}.py", PACKAGE_DIR / f"{function_name}.py"),
        *((f"lambdas/specs/{name}", PACKAGE_DIR / "specs" / name) for name in SPEC_FILES),
        (f"lambdas/specs/{function_name}.py", PACKAGE_DIR / "specs" / f"{function_name}.py"),
    ]
    for path in (PACKAGE_DIR / "shared").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in _EXCLUDED_SUFFIXES:
            files.append((path.relative_to(ROOT).as_posix(), path))
    return sorted(files)


def build_archive(function_name: str, out_dir: Path) -> Path:
    """Write `<out_dir>/<function_name>.zip` deterministically and return its path."""
    return write_archive(out_dir / f"{function_name}.zip", source_files(function_name))


def write_archive(target: Path, entries: Iterable[tuple[str, Path]]) -> Path:
    """Write `entries` (name in the archive, file) as a deterministic zip at `target`.

    Entries in the given order, timestamps fixed, mode 0644, Unix as the creator whatever the
    build host, compression fixed: the same files give the same bytes. The file is rewritten only
    when its bytes change, so its mtime also stays put. Each build writes its own temporary file
    and renames it atomically, so concurrent builds (parallel test runs, a preview beside
    `make run`) never see a half-written archive.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".zip.tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, whatever the build host
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    if target.exists() and target.read_bytes() == temporary.read_bytes():
        temporary.unlink()
    else:
        temporary.replace(target)
    return target


LAYER_DISTRIBUTIONS: tuple[str, ...] = (
    POWERTOOLS_DISTRIBUTION,
    "jmespath",
    "typing-extensions",
)
"""What the stack's own Powertools layer holds: the library and its two required dependencies
(pure Python, so one layer serves arm64 and x86_64), at the versions requirements.lock pins."""
_LAYER_SKIPPED = ("INSTALLER", "RECORD", "REQUESTED", "direct_url.json")
"""Installer-specific metadata: left out so every machine builds the same bytes."""


def layer_files(distributions: tuple[str, ...] = LAYER_DISTRIBUTIONS) -> list[tuple[str, Path]]:
    """(archive path under `python/`, installed file) of each distribution, sorted.

    Refuses an environment whose installed version is not the one requirements.lock pins: the
    layer must carry the library the tests ran.
    """
    files: list[tuple[str, Path]] = []
    for name in distributions:
        pinned = pinned_version(name)
        try:
            installed = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ValueError(
                f"{name} is not installed, so the signed Powertools layer cannot be built; "
                "fix: `make install`"
            ) from None
        if installed.version != pinned:
            raise ValueError(
                f"{name} {installed.version} is installed but requirements.lock pins {pinned}; "
                "fix: `make install` (the layer is built from the installed files)"
            )
        for entry in installed.files or []:
            path = Path(str(entry))
            if ".." in path.parts or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            if path.name in _LAYER_SKIPPED:
                continue
            files.append((f"python/{path.as_posix()}", Path(str(installed.locate_file(entry)))))
    return sorted(files)


def build_layer_archive(out_dir: Path, distributions: tuple[str, ...] = LAYER_DISTRIBUTIONS) -> Path:
    """Write `<out_dir>/powertools-layer.zip` deterministically (as the functions' archives) and
    return its path; rewritten only when its bytes change, so an unchanged layer is neither
    uploaded nor signed again."""
    return write_archive(out_dir / "powertools-layer.zip", layer_files(distributions))


def source_code_hash(archive: Path) -> str:
    """Base64 SHA-256 of an archive: Lambda's `source_code_hash`."""
    return base64.b64encode(hashlib.sha256(archive.read_bytes()).digest()).decode()


def powertools_layer_arn(region: str, architecture: str, *, version: int) -> str:
    """An AWS-published Powertools for AWS Lambda (Python) V3 layer version for this runtime (the
    program does not guess `version`: it reads `powertools_layer_ssm_parameter()`)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    if region.startswith("us-gov-"):
        raise ValueError("the Powertools layer ARN for GovCloud is published separately; pass it explicitly")
    runtime = RUNTIME.replace(".", "")
    return (
        f"arn:{partition}:lambda:{region}:{_POWERTOOLS_ACCOUNTS[partition]}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{runtime}-{architecture}:{version}"
    )


def powertools_layer_ssm_parameter(
    architecture: str = "x86_64", powertools_version: str = POWERTOOLS_VERSION
) -> str:
    """The public SSM parameter whose value is the layer ARN of an exact Powertools version."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
    return f"/aws/service/powertools/python/{architecture}/{RUNTIME}/{powertools_version}"


def _check(function_name: str) -> None:
    catalog.spec_of(function_name)  # a ValueError naming the known functions
