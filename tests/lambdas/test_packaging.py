"""Archives: exactly the function, its spec and the shared library, byte-identical for the same source."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambdas import packaging
from lambdas.specs import catalog


@pytest.mark.parametrize("function", catalog.function_names())
def test_archive_holds_only_the_function_its_spec_and_the_shared_library(
    function: str, tmp_path: Path
) -> None:
    archive = packaging.build_archive(function, tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names)
    assert "lambdas/__init__.py" in names and f"lambdas/{function}.py" in names
    assert "lambdas/shared/contract.py" in names and "lambdas/shared/batch.py" in names
    others = [n for n in names if n.startswith("lambdas/") and n.count("/") == 1]
    assert sorted(others) == sorted(["lambdas/__init__.py", f"lambdas/{function}.py"])
    specs = [n for n in names if n.startswith("lambdas/specs/")]
    assert set(specs) == {
        "lambdas/specs/__init__.py",
        "lambdas/specs/model.py",
        f"lambdas/specs/{function}.py",
    }, "the handler's own spec and the model, no other function's spec and no catalog"
    assert all(n.startswith("lambdas/shared/") for n in names if n not in others and n not in specs)
    assert not any("__pycache__" in n or n.endswith(".pyc") or "boto" in n or "test" in n for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert archive.stat().st_size < 200_000


def test_same_source_gives_identical_bytes(tmp_path: Path) -> None:
    a = packaging.build_archive("funding_update", tmp_path / "a")
    # Bytecode caches and file timestamps must not leak in.
    (Path(packaging.__file__).parent / "shared").joinpath("contract.py").touch()
    b = packaging.build_archive("funding_update", tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert packaging.source_code_hash(a) == packaging.source_code_hash(b)
    assert packaging.build_archive("notifier", tmp_path / "a").read_bytes() != a.read_bytes()


def test_handlers_resolve_to_callables() -> None:
    for function in catalog.function_names():
        module_name, _, attribute = packaging.handler_of(function).rpartition(".")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    with pytest.raises(ValueError, match="unknown function"):
        packaging.handler_of("nope")


def test_powertools_layer_arn() -> None:
    arn = packaging.powertools_layer_arn("ap-northeast-2", "arm64", version=31)
    assert (
        arn
        == "arn:aws:lambda:ap-northeast-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-arm64:31"
    )
    assert packaging.powertools_layer_arn("cn-north-1", "x86_64", version=2).startswith(
        "arn:aws-cn:lambda:cn-north-1:498634801083:"
    )
    with pytest.raises(ValueError):
        packaging.powertools_layer_arn("eu-west-1", "sparc", version=1)


def test_the_layer_parameter_names_the_release_the_lock_pins_and_the_tests_run() -> None:
    import importlib.metadata

    pinned = packaging.pinned_version("aws-lambda-powertools")
    assert pinned == importlib.metadata.version("aws-lambda-powertools") == packaging.POWERTOOLS_VERSION
    assert packaging.powertools_layer_ssm_parameter("arm64") == (
        f"/aws/service/powertools/python/arm64/python3.11/{pinned}"
    )


def test_a_lock_without_the_library_is_refused_with_the_fix(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pins\nboto3==1.35.0\nAws_Lambda.Powertools==9.9.9  # normalized like pip\n")
    assert packaging.pinned_version("aws-lambda-powertools", lock) == "9.9.9"
    lock.write_text("boto3==1.35.0\n")
    with pytest.raises(ValueError, match=r"pins no aws-lambda-powertools; fix: add it to requirements.in"):
        packaging.pinned_version("aws-lambda-powertools", lock)


@pytest.mark.parametrize("function", catalog.function_names())
def test_missing_environment_fails_the_cold_start_naming_it(function: str) -> None:
    spec = catalog.spec_of(function)
    assert spec.environment, "every function needs some configuration"
    assert importlib.import_module(f"lambdas.{function}").SPEC is spec, "the handler runs with its own spec"
    missing = spec.environment[-1]
    env = {k: v for k, v in os.environ.items() if k != missing}
    result = subprocess.run(
        [sys.executable, "-c", f"import lambdas.{function}"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(packaging.ROOT),
        check=False,
    )
    assert result.returncode != 0
    assert "MissingEnvironmentError" in result.stderr and missing in result.stderr


ARCHIVE_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import importlib
import json
handler = importlib.import_module("lambdas." + sys.argv[2]).handler
print(json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()
                  if name.split(".")[0] == "lambdas"}))
"""


@pytest.mark.parametrize("function", catalog.function_names())
def test_each_archive_cold_starts_from_its_own_files(function: str, tmp_path: Path) -> None:
    """The handler reads its spec at import: the archive alone must carry it (and nothing else needs to)."""
    with zipfile.ZipFile(packaging.build_archive(function, tmp_path)) as archive:
        archive.extractall(tmp_path / "task")
    result = subprocess.run(
        [sys.executable, "-I", "-c", ARCHIVE_PROBE, str(tmp_path / "task"), function],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert f"lambdas.specs.{function}" in loaded and "lambdas.specs.catalog" not in loaded
    outside = {name: file for name, file in loaded.items() if file and not file.startswith(str(tmp_path))}
    assert outside == {}, "every lambdas module the handler imports must come from its archive"
