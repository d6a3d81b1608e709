"""A Pulumi project on disk, synthesized offline: its stacks, their config, its program under mocks.

One implementation serves the tests (the `synth` fixture), `make preview`, `make report`, the docs
and the embedded runner. It works on any Pulumi project built from the library: the project's name
and program come from its `Pulumi.yaml` (`name`, `main`), each stack's config from
`Pulumi.<stack>.yaml`, and the program runs as the Python language host runs it (`runpy` on the
`main` directory), under `awsblocks.testing`'s recording mocks.

The default project is this repository's (`REPO_ROOT`).
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from awsblocks.testing import MOCK_ACCOUNT_ID, RecordingMonitor, Synthesis, as_config_string
from awsblocks.testing import synthesize as synthesize_program
from pulumi.runtime import mocks as pulumi_mocks

REPO_ROOT = Path(__file__).resolve().parent.parent
STAND_INS_FILE = "stand-ins.yaml"
"""Beside Pulumi.yaml: offline values for the config only the user can supply (optional)."""


@dataclass(frozen=True)
class Project:
    """A Pulumi project directory (the one holding `Pulumi.yaml`)."""

    root: Path

    @cached_property
    def definition(self) -> dict[str, Any]:
        path = self.root / "Pulumi.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} is not a Pulumi project: no Pulumi.yaml there")
        return yaml.safe_load(path.read_text()) or {}

    @property
    def name(self) -> str:
        """The project's name (`name:` in Pulumi.yaml), also its config namespace."""
        return str(self.definition["name"])

    @property
    def main(self) -> Path:
        """The program's directory or file (`main:` in Pulumi.yaml; default the project root)."""
        return (self.root / str(self.definition.get("main") or ".")).resolve()

    def stack_names(self) -> list[str]:
        """Every committed stack (one per `Pulumi.<stack>.yaml`)."""
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.root.glob("Pulumi.*.yaml"))

    def stand_ins(self, raw: Mapping[str, str]) -> dict[str, str]:
        """Offline stand-ins (from `stand-ins.yaml`) for values the stack config leaves unset.

        Each entry applies when every key of its `when` has that value in the config.
        """
        path = self.root / STAND_INS_FILE
        if not path.is_file():
            return {}
        region = raw.get("aws:region", "ap-northeast-2")
        found: dict[str, str] = {}
        for entry in yaml.safe_load(path.read_text()) or []:
            if all(
                raw.get(key) == as_config_string(value) for key, value in (entry.get("when") or {}).items()
            ):
                for key, value in (entry.get("values") or {}).items():
                    if not raw.get(key):
                        found[key] = str(value).format(region=region, account=MOCK_ACCOUNT_ID)
        return found

    def read_stack_config(self, stack: str, *, with_stand_ins: bool = True) -> dict[str, str]:
        """The `config:` block of `Pulumi.<stack>.yaml`, as the CLI would pass it.

        With `with_stand_ins` (offline synthesis), the values only the user can supply are filled in
        from `stand-ins.yaml`; without, exactly the file.
        """
        path = self.root / f"Pulumi.{stack}.yaml"
        if not path.exists():
            known = ", ".join(self.stack_names()) or "none"
            raise FileNotFoundError(f"no stack file {path.name}; committed stacks: {known}")
        document = yaml.safe_load(path.read_text()) or {}
        raw = document.get("config") or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path.name}: 'config' must be a mapping of keys to values")
        config = {str(k): as_config_string(v) for k, v in raw.items()}
        return {**config, **self.stand_ins(config)} if with_stand_ins else config

    def program(self) -> None:
        """Run the project's program as the Python language host does: `main` as `__main__`."""
        saved = sys.argv[:]
        try:
            sys.argv = [str(self.main)]
            runpy.run_path(str(self.main), run_name="__main__")
        finally:
            sys.argv = saved

    def synthesize(
        self,
        stack: str,
        *,
        config: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        program: Callable[[], Any] | None = None,
        mocks: pulumi_mocks.Mocks | None = None,
        monitor: RecordingMonitor | None = None,
    ) -> Synthesis:
        """Run `program` (default: the project's own) for `stack` under mocks; record every resource.

        `config` replaces the stack file's config entirely; `overrides` patch single keys
        (`{"crowdfunding:azCount": 3}`; a value of None removes the key).
        """
        raw = dict(config) if config is not None else self.read_stack_config(stack)
        for key, value in (overrides or {}).items():
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = as_config_string(value)
        return synthesize_program(
            program or self.program,
            config=raw,
            project=self.name,
            stack=stack,
            mocks=mocks,
            monitor=monitor,
        )


def current_project() -> Project:
    """The project the toolchain works on: `PROJECT=<dir>` (relative to this checkout), else this one."""
    chosen = os.environ.get("PROJECT")
    return Project((REPO_ROOT / chosen).resolve() if chosen else REPO_ROOT)


PROJECT = current_project()


def stack_names() -> list[str]:
    """Every committed stack of the current project."""
    return PROJECT.stack_names()


def read_stack_config(stack: str, *, with_stand_ins: bool = True) -> dict[str, str]:
    """A stack's config of the current project (see `Project.read_stack_config`)."""
    return PROJECT.read_stack_config(stack, with_stand_ins=with_stand_ins)


def stand_ins(raw: Mapping[str, str]) -> dict[str, str]:
    """Offline stand-ins of the current project (see `Project.stand_ins`)."""
    return PROJECT.stand_ins(raw)


def synthesize(stack: str, **kwargs: Any) -> Synthesis:
    """Synthesize a stack of the current project (see `Project.synthesize`)."""
    return PROJECT.synthesize(stack, **kwargs)
