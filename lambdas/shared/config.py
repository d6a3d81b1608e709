"""Configuration from environment variables, checked at cold start.

Every function's spec (`lambdas/specs/<function>.py`) declares `environment` (required names) and
`optional_environment`; the infrastructure reads both to set exactly that environment, and the
handler passes its spec's `environment` to `require_environment`, which runs at import
so a misconfigured function fails its cold start with a message that names what is missing,
instead of failing later on the first message (and burning its retries). Values are read from
`os.environ` at call time, so tests may set them before calling a handler.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


class MissingEnvironmentError(RuntimeError):
    """A required environment variable is not set (or is empty)."""


class InvalidEnvironmentError(RuntimeError):
    """An environment variable is set to a value the function cannot use."""


def require_environment(names: Iterable[str], *, function: str) -> None:
    """Fail loudly, naming every missing variable, when any required one is unset or empty."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise MissingEnvironmentError(
            f"{function}: missing required environment variable(s): {', '.join(missing)}"
        )


def env_str(name: str) -> str:
    """A required string setting."""
    value = os.environ.get(name)
    if not value:
        raise MissingEnvironmentError(f"missing required environment variable: {name}")
    return value


def env_optional(name: str) -> str | None:
    """An optional string setting (None when unset or empty)."""
    return os.environ.get(name) or None


def env_int(name: str, default: int | None = None, *, minimum: int | None = None) -> int:
    """An integer setting; `default` makes it optional."""
    raw = os.environ.get(name)
    if not raw:
        if default is None:
            raise MissingEnvironmentError(f"missing required environment variable: {name}")
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidEnvironmentError(f"{name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise InvalidEnvironmentError(f"{name}={value} must be >= {minimum}")
    return value


def env_rate(name: str, default: float = 0.0) -> float:
    """A probability in [0, 1]."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidEnvironmentError(f"{name}={raw!r} is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise InvalidEnvironmentError(f"{name}={value} must be between 0 and 1")
    return value
