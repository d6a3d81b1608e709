"""Shared fixtures. `synth` runs the whole stack or one component under Pulumi's mocks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from awsblocks.testing import Synthesis

from toolchain.project import synthesize

TEST_REGION = "ap-northeast-2"
COMPONENT_CONFIG = {"aws:region": TEST_REGION}

SynthFn = Callable[..., Synthesis]


@pytest.fixture(scope="session")
def _stack_cache() -> dict[tuple[str, tuple[tuple[str, Any], ...]], Synthesis]:
    return {}


@pytest.fixture
def synth(_stack_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Synthesis]) -> SynthFn:
    """Run `program` (default: the whole stack) for `stack` and return every declared resource.

    - `synth("dev")`: the committed dev stack (cached for the session; treat it as read-only).
    - `synth("dev", overrides={"crowdfunding:natStrategy": "none"})`: the stack with keys patched.
    - `synth(program=lambda: Network(...))`: one component, with only `aws:region` configured.
    """

    def run(
        stack: str = "test",
        *,
        overrides: Mapping[str, Any] | None = None,
        program: Callable[[], Any] | None = None,
        config: Mapping[str, str] | None = None,
    ) -> Synthesis:
        if program is not None:
            return synthesize(stack, config=config or COMPONENT_CONFIG, overrides=overrides, program=program)
        key = (stack, tuple(sorted((overrides or {}).items())))
        if config is None and key not in _stack_cache:
            _stack_cache[key] = synthesize(stack, overrides=overrides)
        return _stack_cache[key] if config is None else synthesize(stack, config=config, overrides=overrides)

    return run
