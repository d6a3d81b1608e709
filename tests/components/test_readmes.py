"""Every example in the library's READMEs runs: each ```python block is a program of its own.

A team copies these first; an example that no longer declares what it shows is a broken promise.
Each block runs under the library's own offline harness (`awsblocks.testing.synthesize`) in a
directory holding the function archives it names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from awsblocks.testing import synthesize

LIBRARY = Path(__file__).resolve().parents[2] / "components"
READMES = sorted((LIBRARY / "awsblocks").glob("*/README.md"))
CONCERNS = (
    "auth",
    "data",
    "delivery",
    "functions",
    "messaging",
    "network",
    "observability",
    "security",
    "web",
)


def test_every_concern_has_a_readme_and_the_library_indexes_them() -> None:
    assert sorted(p.parent.name for p in READMES) == sorted(CONCERNS)
    index = (LIBRARY / "README.md").read_text()
    missing = [c for c in CONCERNS if f"awsblocks/{c}/README.md" not in index]
    assert not missing, f"components/README.md does not link to: {missing}"


def _examples() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for index, block in enumerate(re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)):
            found.append((f"{readme.parent.name}-{index}", block))
    return found


@pytest.mark.parametrize(("label", "source"), _examples(), ids=[label for label, _ in _examples()])
def test_a_readme_example_declares_its_resources(label: str, source: str, tmp_path: Path) -> None:
    for archive in re.findall(r'"(build/[\w./-]+\.zip)"', source):
        (tmp_path / archive).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / archive).write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = synthesize(
            lambda: exec(compile(source, f"<{label}>", "exec"), {"__name__": "__example__"}),
            config={"aws:region": "ap-northeast-2"},
        )
    finally:
        os.chdir(cwd)
    assert result.cloud_resources, f"{label} declares nothing"
    assert any(r.type.startswith("awsblocks:index:") for r in result.resources), f"{label} uses no component"


def test_the_library_readme_testing_example_runs_as_written() -> None:
    """The top README's example calls `synthesize` itself, so it runs on its own, not nested."""
    source = re.findall(r"```python\n(.*?)```", (LIBRARY / "README.md").read_text(), re.S)[0]
    exec(compile(source, "<components/README.md>", "exec"), {"__name__": "__example__"})
