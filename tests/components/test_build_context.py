"""Content tags of Docker build contexts: what docker would send, and nothing else, decides the tag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from awsblocks.web.build_context import IgnoreRules, context_files, context_tag
from hypothesis import given, settings
from hypothesis import strategies as st


def make_context(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_context(
        tmp_path,
        {
            "app/Dockerfile": "FROM python:3.11-slim\nCOPY app /srv/app\n",
            "app/main.py": "print('api')\n",
            "lambdas/shared/contract.py": "X = 1\n",
            "infra/stack.py": "# infrastructure, not in the image\n",
            "README.md": "docs\n",
        },
    )


def tag(ctx: Path, **kwargs: object) -> str:
    return context_tag(ctx, ctx / "app" / "Dockerfile", **kwargs)  # type: ignore[arg-type]


def test_same_files_same_tag_and_any_sent_change_changes_it(ctx: Path) -> None:
    first = tag(ctx)
    assert first == tag(ctx) and first.startswith("ctx-") and len(first) == 28
    (ctx / "app" / "main.py").write_text("print('api v2')\n")
    assert tag(ctx) != first


def test_platform_build_args_and_dockerfile_are_part_of_the_tag(ctx: Path) -> None:
    base = tag(ctx)
    assert tag(ctx, platform="linux/arm64") != base
    assert tag(ctx, build_args={"VERSION": "1"}) != base
    (ctx / "app" / "Dockerfile").write_text("FROM python:3.12-slim\n")
    assert tag(ctx) != base


def test_executable_bit_and_renames_change_the_tag(ctx: Path) -> None:
    base = tag(ctx)
    os.chmod(ctx / "app" / "main.py", 0o755)
    assert tag(ctx) != base
    os.chmod(ctx / "app" / "main.py", 0o644)
    (ctx / "app" / "main.py").rename(ctx / "app" / "server.py")
    assert tag(ctx) != base


def test_caches_and_version_control_never_count(ctx: Path) -> None:
    base = tag(ctx)
    make_context(
        ctx, {".git/HEAD": "ref", "app/__pycache__/main.cpython-311.pyc": "x", ".venv/lib/x.py": "y"}
    )
    assert tag(ctx) == base


def test_dockerignore_allow_list_keeps_infra_changes_from_rebuilding(ctx: Path) -> None:
    (ctx / ".dockerignore").write_text("# only what the image needs\n*\n!app/\n!lambdas/shared/\n")
    base = tag(ctx)
    (ctx / "infra" / "stack.py").write_text("# changed infra\n")
    (ctx / "README.md").write_text("changed docs\n")
    assert tag(ctx) == base
    (ctx / "lambdas" / "shared" / "contract.py").write_text("X = 2\n")
    assert tag(ctx) != base


def test_dockerfile_specific_ignore_file_wins_over_the_contexts(ctx: Path) -> None:
    (ctx / ".dockerignore").write_text("app\n")
    (ctx / "app" / "Dockerfile.dockerignore").write_text("README.md\n")
    files = set(context_files(ctx, IgnoreRules(("README.md",))))
    assert "app/main.py" in files and "README.md" not in files
    base = tag(ctx)
    (ctx / "README.md").write_text("changed\n")
    assert tag(ctx) == base
    (ctx / "app" / "main.py").write_text("changed\n")
    assert tag(ctx) != base


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (("*.md",), "README.md", True),
        (("*.md",), "docs/guide.md", False),
        (("**/*.md",), "docs/guide.md", True),
        (("docs",), "docs/deep/file.txt", True),
        (("*", "!app"), "app/main.py", False),
        (("*", "!app", "app/secret.env"), "app/secret.env", True),
        (("/build/",), "build/out.bin", True),
        (("tests/**/fixtures",), "tests/a/b/fixtures/x.json", True),
        (("file?.txt",), "file1.txt", True),
        (("file?.txt",), "file10.txt", False),
        (("[a-c].txt",), "b.txt", True),
    ],
)
def test_ignore_patterns_follow_dockerignore_semantics(
    patterns: tuple[str, ...], path: str, excluded: bool
) -> None:
    assert IgnoreRules(patterns).excluded(path) is excluded


def test_missing_context_or_dockerfile_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Dockerfile .*nope"):
        context_tag(tmp_path, tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        context_tag(tmp_path / "missing", "Dockerfile")


_names = st.text(alphabet="abcdefgh", min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(
    files=st.dictionaries(
        st.lists(_names, min_size=1, max_size=3).map("/".join), st.text(max_size=20), max_size=6
    )
)
def test_tag_depends_only_on_content_not_on_creation_order(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]
) -> None:
    # Paths that are both a file and a directory cannot coexist; keep the leaves.
    leaves = {p: t for p, t in files.items() if not any(o.startswith(p + "/") for o in files)}
    one = make_context(tmp_path_factory.mktemp("one"), {"Dockerfile": "FROM scratch\n", **leaves})
    two = make_context(
        tmp_path_factory.mktemp("two"),
        {"Dockerfile": "FROM scratch\n", **dict(reversed(list(leaves.items())))},
    )
    assert context_tag(one, one / "Dockerfile") == context_tag(two, two / "Dockerfile")
