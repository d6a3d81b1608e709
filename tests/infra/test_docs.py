"""The README's generated sections match the program, and it names the interface we keep."""

from __future__ import annotations

import re

from toolchain.docs import README, render
from toolchain.project import REPO_ROOT


def test_readme_generated_sections_are_current() -> None:
    text = README.read_text()
    assert render(text) == text, "README.md is out of date: run `make docs`"


def test_readme_make_targets_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    mentioned = set(re.findall(r"(?:^|`)make ([a-z-]+)", README.read_text(), re.MULTILINE))
    assert {"install", "test", "run", "preview"} <= mentioned
    assert mentioned <= targets, f"README mentions targets the Makefile lacks: {mentioned - targets}"
