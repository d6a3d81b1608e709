"""What the CI tests share: the Makefile's targets and the `make` calls a script makes."""

from __future__ import annotations

import re

from toolchain.project import REPO_ROOT

_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)
_MAKE_CALL = re.compile(r"(?:^|[;&|(]\s*|\s)make\s+([A-Za-z0-9][A-Za-z0-9_.-]*)")


def make_targets() -> set[str]:
    """Every target the Makefile defines (`.PHONY` and friends aside)."""
    text = (REPO_ROOT / "Makefile").read_text()
    return {t for t in _TARGET.findall(text) if not t.startswith(".")}


def make_calls(script: str) -> list[str]:
    """The targets a shell snippet asks `make` for, in order (`make test STACK=dev` → test)."""
    return _MAKE_CALL.findall(script)
