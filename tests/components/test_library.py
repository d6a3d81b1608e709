"""The library as other teams get it: installable alone, product-agnostic, its outputs what it says.

- `pip install ./components` installs `awsblocks` and nothing of this product, and every module
  imports from that install alone (with only pulumi and pulumi-aws beside it);
- no component reads stack context or config: a component takes what it needs as arguments;
- each component registers exactly the outputs it exposes as attributes, and documents each;
- names that must be unique in an account carry the `name_prefix` a stack gives, and components
  inside components inherit it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from awsblocks.messaging.queue import Queue, QueueArgs
from awsblocks.security.encryption_key import EncryptionKey, EncryptionKeyArgs

from tests.conftest import SynthFn

LIBRARY = Path(__file__).resolve().parents[2] / "components"
PACKAGE = LIBRARY / "awsblocks"
PRODUCT_PACKAGES = ("infra", "app", "lambdas", "dashboards", "policies", "toolchain", "local", "tests")
BASE_ATTRIBUTES = {"component_name", "tags", "name_prefix"}


def _component_classes() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "Component" for base in node.bases
            ):
                found.append((path, node))
    return found


def test_the_library_has_one_component_per_module() -> None:
    per_module: dict[Path, list[str]] = {}
    for path, node in _component_classes():
        per_module.setdefault(path, []).append(node.name)
    assert len(per_module) >= 16
    crowded = {str(p.relative_to(LIBRARY)): names for p, names in per_module.items() if len(names) > 1}
    assert not crowded, f"modules holding more than one component: {crowded}"


@pytest.mark.parametrize(("path", "node"), _component_classes(), ids=lambda v: getattr(v, "name", ""))
def test_a_component_registers_exactly_the_outputs_it_exposes_and_documents_each(
    path: Path, node: ast.ClassDef
) -> None:
    exposed: set[str] = set()
    registered: set[str] | None = None
    for inner in ast.walk(node):
        if isinstance(inner, ast.Assign | ast.AnnAssign):
            targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and not target.attr.startswith("_")
                ):
                    exposed.add(target.attr)
        if isinstance(inner, ast.Call) and getattr(inner.func, "attr", "") == "register_outputs":
            assert isinstance(inner.args[0], ast.Dict), f"{node.name}: register_outputs takes a dict literal"
            registered = {k.value for k in inner.args[0].keys if isinstance(k, ast.Constant)}
    assert registered is not None, f"{node.name} never calls register_outputs"
    exposed -= BASE_ATTRIBUTES
    assert exposed == registered, (
        f"{node.name}: attributes without a registered output {sorted(exposed - registered)}, "
        f"registered outputs without an attribute {sorted(registered - exposed)}"
    )
    docstring = ast.get_docstring(node) or ""
    undocumented = sorted(name for name in registered if f"`{name}`" not in docstring)
    assert not undocumented, f"{node.name}: outputs its docstring does not describe: {undocumented}"


def test_no_component_reads_stack_context_or_config() -> None:
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("get_project", "get_stack", "Config"):
                offending.append(f"{path.relative_to(LIBRARY)}:{node.lineno} {node.attr}")
    assert not offending, f"components take what they need as arguments: {offending}"


def test_the_library_imports_no_product_code() -> None:
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                offending += [
                    f"{path.relative_to(LIBRARY)}: {n}" for n in names if n.split(".")[0] in PRODUCT_PACKAGES
                ]
    assert not offending, offending


def test_pip_install_of_the_library_alone_imports_every_module(tmp_path: Path) -> None:
    """`pip install ./components` (build isolation fetches setuptools from the package index)."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(LIBRARY),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    installed = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info"))
    assert installed == ["awsblocks"], f"the library installs only itself: {installed}"
    metadata = next(target.glob("awsblocks-*.dist-info")) / "METADATA"
    requires = [line for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")]
    assert any("pulumi<4,>=3" in r for r in requires) and any("pulumi-aws<8,>=7" in r for r in requires)
    assert any("pulumi-docker" in r and 'extra == "docker"' in r for r in requires), requires
    # Every module imports from the install, with the checkout off the path: the standard library,
    # the install and the virtualenv's site-packages (pulumi, pulumi-aws) only.
    site_packages = sysconfig.get_paths()["purelib"]
    script = (
        "import importlib, json, pkgutil, sys\n"
        f"sys.path = [{str(target)!r}, *[p for p in sys.path if p and 'python3' in p], {site_packages!r}]\n"
        "import awsblocks\n"
        "names = [m.name for m in pkgutil.walk_packages(awsblocks.__path__, 'awsblocks.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "product = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{PRODUCT_PACKAGES!r})\n"
        "print(json.dumps({'file': awsblocks.__file__, 'modules': len(names), 'product': product}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["file"]).is_relative_to(target)
    assert found["modules"] >= 30 and found["product"] == []


def test_account_unique_names_carry_the_prefix_and_owned_components_inherit_it(synth: SynthFn) -> None:
    def program() -> None:
        EncryptionKey("shared", EncryptionKeyArgs(description="shop keys", name_prefix="shop-prod-"))
        alerts = "arn:aws:sns:ap-northeast-2:123456789012:alerts"
        Queue("orders", QueueArgs(alarm_topic_arn=alerts, name_prefix="shop-prod-"))
        Queue("returns", QueueArgs(alarm_topic_arn=alerts))

    s = synth(program=program)
    aliases = sorted(r.inputs["name"] for r in s.of_type("aws:kms/alias:Alias"))
    assert aliases == [
        "alias/returns-queue-key",
        "alias/shop-prod-orders-queue-key",
        "alias/shop-prod-shared",
    ]


def _args_classes() -> list[type]:
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import awsblocks

    found: list[type] = []
    for module_info in pkgutil.walk_packages(awsblocks.__path__, "awsblocks."):
        if ".testing" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
                and name.endswith("Args")
            ):
                found.append(value)
    return found


def _described(name: str, klass: type) -> bool:
    """An `Attributes:` entry in the class docstring, or a docstring right under the field."""
    import inspect
    import re

    if re.search(rf"^\s+{name}: \S", inspect.getdoc(klass) or "", re.M):
        return True
    source = inspect.getsource(klass)
    return bool(re.search(rf"^\s+{name}: [^\n]*\n\s+\"\"\"", source, re.M))


@pytest.mark.parametrize("args_class", _args_classes(), ids=lambda c: c.__name__)
def test_every_input_of_a_component_is_documented(args_class: type) -> None:
    """Each argument is described in its class or in the class it inherits it from."""
    import dataclasses

    owners = [k for k in args_class.__mro__ if dataclasses.is_dataclass(k)]
    undocumented = [
        f.name
        for f in dataclasses.fields(args_class)
        if not any(_described(f.name, k) for k in owners if f.name in k.__dataclass_fields__)
    ]
    assert not undocumented, f"{args_class.__name__}: arguments without a description: {undocumented}"
