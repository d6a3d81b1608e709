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


class ProjectConfigError(ValueError):
    """A stack's config that the Pulumi CLI itself would refuse (Pulumi.yaml's config schema)."""


def _is_of_type(value: str, kind: str) -> bool:
    """Whether a config string is of a Pulumi project config type."""
    if kind == "integer":
        return value.lstrip("-").isdigit()
    if kind == "boolean":
        return value in ("true", "false")
    if kind == "array":
        return value.startswith("[")
    return True


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

    @property
    def config_schema(self) -> dict[str, dict[str, Any]]:
        """The project-level config block of Pulumi.yaml (`<key>: {type, description, default}`)."""
        return dict(self.definition.get("config") or {})

    def project_config_problems(self, stack: str, raw: Mapping[str, str]) -> list[str]:
        """What the Pulumi CLI refuses before the program runs, against Pulumi.yaml's config schema:
        a key of this project's namespace the project does not declare, a declared key without a
        default the stack does not set, and a value that is not of the declared type."""
        schema = self.config_schema
        if not schema:
            return []
        problems: list[str] = []
        prefix = f"{self.name}:"
        for full in sorted(raw):
            if full.startswith(prefix) and full[len(prefix) :] not in schema:
                problems.append(
                    f"Stack '{stack}' uses configuration value '{full}' which is not defined by the "
                    f"project configuration (Pulumi.yaml); a typo? declared: {', '.join(schema)}"
                )
        for name, entry in schema.items():
            value = raw.get(prefix + name)
            if value is None:
                if not isinstance(entry, dict) or ("default" not in entry and "value" not in entry):
                    problems.append(f"Stack '{stack}' is missing configuration value '{prefix}{name}'")
                continue
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind is not None and not _is_of_type(value, kind):
                problems.append(
                    f"Stack '{stack}' with configuration key '{prefix}{name}' must be of type '{kind}'"
                )
        return problems

    def with_project_defaults(self, raw: Mapping[str, str]) -> dict[str, str]:
        """The config the CLI hands the program: the stack's values over Pulumi.yaml's defaults."""
        merged = dict(raw)
        for name, entry in self.config_schema.items():
            full = f"{self.name}:{name}"
            if full in merged:
                continue
            if isinstance(entry, dict) and ("default" in entry or "value" in entry):
                merged[full] = as_config_string(entry.get("default", entry.get("value")))
            elif not isinstance(entry, dict):
                merged[full] = as_config_string(entry)
        return merged

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
        if with_stand_ins:
            config = {**config, **self.stand_ins(config)}
        if problems := self.project_config_problems(stack, config):
            raise ProjectConfigError("\n".join(problems))
        return self.with_project_defaults(config)

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
