"""A content tag for a Docker build context: same files in, same tag out.

`WebService` tags its image with `context_tag(...)`, so an unchanged context yields the same
tag, Pulumi sees no diff, and nothing is rebuilt, pushed or redeployed. The file set is what
`docker build` would send: the context minus `.dockerignore` patterns (BuildKit's
`<Dockerfile>.dockerignore` next to the Dockerfile wins over `<context>/.dockerignore`, as in
Docker), minus a few paths that never belong in an image (`DEFAULT_IGNORES`). The Dockerfile,
the target platform and build arguments are part of the tag too.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

DEFAULT_IGNORES: tuple[str, ...] = (
    ".git",
    ".venv",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
)
"""Ignored even without a `.dockerignore`: version control, virtualenvs and tool caches."""

TAG_PREFIX = "ctx-"
TAG_HEX_LENGTH = 24


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A `.dockerignore` pattern as a regex over slash-separated relative paths."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    literal_prefix: str


def _clean(pattern: str) -> str:
    pattern = pattern.strip()
    while pattern.startswith("/"):
        pattern = pattern[1:]
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.rstrip("/")


@dataclass(frozen=True)
class IgnoreRules:
    """`.dockerignore` semantics: the last matching pattern wins; `!` re-includes.

    A pattern matches a path or any of its parent directories, so `docs` excludes `docs/a.md`.
    """

    patterns: tuple[str, ...]

    @cached_property
    def _rules(self) -> tuple[_Rule, ...]:
        rules = []
        for raw in self.patterns:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            body = _clean(line[1:] if negated else line)
            if not body:
                continue
            literal = re.split(r"[*?\[]", body, maxsplit=1)[0]
            rules.append(_Rule(_pattern_regex(body), negated, literal))
        return tuple(rules)

    def excluded(self, rel_path: str) -> bool:
        """Whether docker would leave this slash-separated relative path out of the context."""
        parts = rel_path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for rule in self._rules:
            if any(rule.regex.match(candidate) for candidate in candidates):
                result = not rule.negated
        return result

    def may_reinclude_under(self, rel_dir: str) -> bool:
        """Whether some `!` pattern could re-include a path below an excluded directory."""
        prefix = rel_dir + "/"
        for rule in self._rules:
            if not rule.negated:
                continue
            literal = rule.literal_prefix
            if literal.startswith(prefix) or prefix.startswith(literal) or not literal:
                return True
        return False


def read_ignore_file(context: Path, dockerfile: Path) -> tuple[str, ...]:
    """The patterns docker would use: `<Dockerfile>.dockerignore`, else `<context>/.dockerignore`."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return tuple(candidate.read_text().splitlines())
    return ()


def context_files(context: Path, rules: IgnoreRules) -> Iterator[str]:
    """Relative paths (slash-separated, sorted) of the files docker would send."""
    found: list[str] = []
    for root, dirs, files in os.walk(context):
        rel_root = Path(root).relative_to(context).as_posix()
        rel_root = "" if rel_root == "." else rel_root
        kept_dirs = []
        for directory in dirs:
            rel = f"{rel_root}/{directory}" if rel_root else directory
            if rules.excluded(rel) and not rules.may_reinclude_under(rel):
                continue
            kept_dirs.append(directory)
        dirs[:] = sorted(kept_dirs)
        for filename in files:
            rel = f"{rel_root}/{filename}" if rel_root else filename
            if not rules.excluded(rel):
                found.append(rel)
    yield from sorted(found)


def context_digest(
    context: Path | str,
    dockerfile: Path | str,
    *,
    platform: str = "",
    build_args: Mapping[str, str] | None = None,
    extra_ignores: Sequence[str] = DEFAULT_IGNORES,
) -> str:
    """SHA-256 over every sent file's path, executable bit and bytes, the Dockerfile, platform and args.

    Raises FileNotFoundError naming the path when the context or the Dockerfile is missing.
    """
    context_path = Path(context).resolve()
    dockerfile_path = Path(dockerfile)
    if not dockerfile_path.is_absolute():
        dockerfile_path = context_path / dockerfile_path
    if not context_path.is_dir():
        raise FileNotFoundError(f"build context {context_path} is not a directory")
    if not dockerfile_path.is_file():
        raise FileNotFoundError(f"Dockerfile {dockerfile_path} does not exist")
    rules = IgnoreRules((*extra_ignores, *read_ignore_file(context_path, dockerfile_path)))
    digest = hashlib.sha256()
    for rel in context_files(context_path, rules):
        path = context_path / rel
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            continue  # removed while we walked (an editor's temporary file): not in the context
        with handle:
            digest.update(b"file\0" + rel.encode() + b"\0")
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
            while chunk := handle.read(1 << 16):
                digest.update(chunk)
        digest.update(b"\0")
    digest.update(b"dockerfile\0" + dockerfile_path.read_bytes() + b"\0")
    digest.update(b"platform\0" + platform.encode() + b"\0")
    for key in sorted(build_args or {}):
        digest.update(b"arg\0" + key.encode() + b"=" + (build_args or {})[key].encode() + b"\0")
    return digest.hexdigest()


def context_tag(
    context: Path | str,
    dockerfile: Path | str,
    *,
    platform: str = "",
    build_args: Mapping[str, str] | None = None,
    extra_ignores: Sequence[str] = DEFAULT_IGNORES,
) -> str:
    """An image tag derived from `context_digest`, e.g. `ctx-3f9a…` (valid for ECR and Docker)."""
    digest = context_digest(
        context, dockerfile, platform=platform, build_args=build_args, extra_ignores=extra_ignores
    )
    return TAG_PREFIX + digest[:TAG_HEX_LENGTH]
