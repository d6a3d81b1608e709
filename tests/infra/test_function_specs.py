"""The functions' specs (lambdas/specs/) are what synthesis reads: no handler, no Powertools.

A preview or `pulumi up` used to import every handler (and ~100 Powertools modules) with
placeholder environment variables just to learn each function's environment and access; now the
stack reads the declarative specs, and these tests keep it that way.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolchain.project import REPO_ROOT

SYNTHESIS_PROBE = """
import json, sys
before = set(sys.modules)
from toolchain.project import synthesize
resources = len(synthesize("dev").resources)
from pathlib import Path
handler_files = Path("lambdas").glob("*.py")
handlers = sorted(
    f"lambdas.{path.stem}" for path in handler_files if path.stem not in ("__init__", "packaging")
)
handlers = [name for name in handlers if name in sys.modules]
print(json.dumps({
    "resources": resources,
    "imported": len(set(sys.modules) - before),
    "handlers": handlers,
    "powertools": sorted(m for m in sys.modules if m.split(".")[0] == "aws_lambda_powertools"),
    "aws_sdk": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")),
}))
"""


def test_a_dev_synthesis_imports_no_handler_and_no_powertools(record_property: pytest.RecordProperty) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SYNTHESIS_PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    record_property("modules_imported_by_dev_synthesis", found["imported"])
    print(f"a dev synthesis ({found['resources']} resources) imported {found['imported']} modules")
    assert found["resources"] > 0
    assert found["handlers"] == [], "synthesis must read lambdas/specs/, never import a handler"
    assert found["powertools"] == [], "synthesis must not import Powertools (the handlers' library)"
    assert found["aws_sdk"] == [], "nothing in synthesis needs boto3 (the mocks answer the data sources)"


CATALOG_PROBE = """
import json, sys
before = set(sys.modules)
from lambdas.specs import catalog
catalog.all_specs()
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_specs_import_only_the_model_and_the_contract() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CATALOG_PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = set(json.loads(result.stdout))
    ours = {name for name in imported if name.split(".")[0] == "lambdas"}
    spec_modules = {f"lambdas.specs.{path.stem}" for path in (REPO_ROOT / "lambdas" / "specs").glob("*.py")}
    allowed = {"lambdas", "lambdas.specs", "lambdas.shared", "lambdas.shared.contract"} | spec_modules
    assert ours <= allowed, f"a spec imports more than the model and the contract: {sorted(ours - allowed)}"
    third_party = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names) - {"lambdas"}
    assert third_party == set(), f"the specs must stay standard-library only: {sorted(third_party)}"


def test_every_handler_has_exactly_one_registered_spec_of_its_name() -> None:
    from lambdas.specs import catalog

    handlers = {
        path.stem
        for path in (REPO_ROOT / "lambdas").glob("*.py")
        if path.stem not in ("__init__", "packaging")
    }
    spec_files = {
        path.stem
        for path in (REPO_ROOT / "lambdas" / "specs").glob("*.py")
        if path.stem not in ("__init__", "model", "catalog")
    }
    names = catalog.function_names()
    assert sorted(names) == sorted(set(names)), "one spec per function"
    assert set(names) == handlers == spec_files, (
        "every lambdas/<function>.py needs lambdas/specs/<function>.py, "
        "listed in lambdas/specs/catalog.py SPECS"
    )
    for name in names:
        module = __import__(f"lambdas.specs.{name}", fromlist=["SPEC"])
        assert module.SPEC is catalog.spec_of(name) and module.SPEC.name == name


def test_an_unknown_function_is_refused_naming_the_known_ones() -> None:
    from lambdas.specs import catalog

    with pytest.raises(
        ValueError, match=r"unknown function 'payment_procesor'; expected one of pg_gateway, "
    ):
        catalog.spec_of("payment_procesor")
