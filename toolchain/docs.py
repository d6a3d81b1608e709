"""Generated sections of README.md: the docs derive from the program, never restate it by hand.

`python -m toolchain.docs` rewrites each `<!-- generated:NAME -->` … `<!-- /generated:NAME -->`
block; `tests/infra/test_docs.py` fails when the README is out of date.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from infra.config import markdown_table
from toolchain.project import REPO_ROOT
from toolchain.report.diagram import readme_architecture

README = REPO_ROOT / "README.md"

SECTIONS: dict[str, Callable[[], str]] = {
    "config-table": markdown_table,
    "architecture": readme_architecture,
}
"""Generated README blocks by name. Later layers register theirs here (e.g. the architecture diagram)."""


def render(text: str) -> str:
    """`text` with every generated block replaced by its current content."""
    for name, produce in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"README.md has no <!-- generated:{name} --> block")
        block = produce().rstrip("\n") + "\n"

        def replace(match: re.Match[str], block: str = block) -> str:
            return match.group(1) + block + match.group(2)

        text = pattern.sub(replace, text)
    return text


def main() -> int:
    """Rewrite README.md's generated blocks in place."""
    current = README.read_text()
    updated = render(current)
    if updated != current:
        README.write_text(updated)
        print("README.md: generated sections updated")
    else:
        print("README.md: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
