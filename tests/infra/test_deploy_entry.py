"""The program runs the way `pulumi up` runs it, from any checkout, with or without `make install`.

The Python language host (sdk/python/cmd/pulumi-language-python-exec) changes to the program
directory (`main: infra/`) and calls `runpy.run_path(".", run_name="__main__")` inside the stack.
These tests do exactly that in a subprocess, under the offline mocks, on a copy of the checkout's
files (what a fresh clone holds): once with a Python that has no editable install of the
project at all, once with the venv's editable install of *this* checkout present while the
copy carries a change, which must be what gets declared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from toolchain.project import REPO_ROOT, read_stack_config

MARKER = "second-checkout"
PROJECT_PACKAGES = [
    pattern.rstrip("*")
    for project in (REPO_ROOT / "pyproject.toml", REPO_ROOT / "components" / "pyproject.toml")
    for pattern in tomllib.loads(project.read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
]
"""The checkout's top-level packages (those the editable installs of the product and library map)."""

# Runs in the subprocess. The mocks come from the test's own checkout (argv[1]); every module of
# that checkout is then forgotten and its path removed, so only the entry can bring the program's
# packages back, from wherever it decides.
DRIVER = r"""
import json, os, runpy, sys
from pathlib import Path

source, checkout, stack = sys.argv[1:4]
PROJECT_PACKAGES = set(json.loads(os.environ["PROJECT_PACKAGES"]))
sys.path[:0] = [source, str(Path(source) / "components")]
from awsblocks.testing import synthesize
sys.path[:] = [entry for entry in sys.path if entry not in (source, str(Path(source) / "components"))]
for name in list(sys.modules):
    if name.split(".")[0] in PROJECT_PACKAGES:
        del sys.modules[name]

os.chdir(Path(checkout) / "infra")
sys.argv = ["."]
result = synthesize(
    stack=stack,
    project="crowdfunding",
    config=json.loads(os.environ["PULUMI_CONFIG"]),
    program=lambda: runpy.run_path(".", run_name="__main__"),
)
print(json.dumps({
    "cloud_resources": len(result.cloud_resources),
    "types": sorted({r.type for r in result.cloud_resources}),
    "stack_module": sys.modules["infra.stack"].__file__,
    "library_module": sys.modules["awsblocks"].__file__,
    "loaded_packages": sorted({m.split(".")[0] for m in sys.modules} & PROJECT_PACKAGES),
    "loaded_app_modules": sorted(m for m in sys.modules if m.split(".")[0] == "app"),
    "default_tags": result.provider_default_tags(result.cloud_resources[0]),
    "editable_finder_loaded": any(name.startswith("__editable__") for name in sys.modules),
    "sys_path_has_program_dir": any(
        Path(entry or ".").resolve() == Path(checkout, "infra").resolve() for entry in sys.path
    ),
}))
"""


def _clone_files(destination: Path) -> Path:
    """Copy what a fresh clone of this working tree holds (tracked and unignored files)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listing.split("\0")):
        source = REPO_ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second checkout at another path, whose program differs from this one by a marker tag."""
    root = _clone_files(tmp_path_factory.mktemp("clone") / "crowdfunding")
    stack = root / "infra" / "stack.py"
    text = stack.read_text()
    assert '"managed-by": "pulumi"' in text
    stack.write_text(
        text.replace('"managed-by": "pulumi"', f'"managed-by": "pulumi", "checkout": "{MARKER}"')
    )
    return root


def _run_as_language_host(checkout: Path, python: list[str], env: dict[str, str]) -> dict:
    driver = checkout.parent / "driver.py"
    driver.write_text(DRIVER)
    config = read_stack_config("dev")
    env = {
        **env,
        "PULUMI_CONFIG": json.dumps(config),
        "PROJECT_PACKAGES": json.dumps(PROJECT_PACKAGES),
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
    }
    done = subprocess.run(
        [*python, str(driver), str(REPO_ROOT), str(checkout), "dev"],
        cwd=checkout / "infra",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_declares_the_checkout(found: dict, checkout: Path) -> None:
    assert found["cloud_resources"] > 150
    for token in ("aws:lambda/function:Function", "aws:ecs/service:Service", "aws:dynamodb/table:Table"):
        assert token in found["types"]
    assert Path(found["stack_module"]).resolve().is_relative_to(checkout.resolve())
    assert Path(found["library_module"]).resolve().is_relative_to(checkout.resolve())
    assert found["default_tags"]["checkout"] == MARKER
    # `pulumi up` loads the program (infra/, with the functions' specs and contract from lambdas/,
    # the API's declared access from app/access.py, the product's dashboards as data) and the
    # library: no toolchain, no API code, no policies.
    assert set(found["loaded_packages"]) <= {"infra", "awsblocks", "lambdas", "dashboards", "app"}
    assert set(found["loaded_app_modules"]) <= {"app", "app.access"}, found["loaded_app_modules"]
    assert not found["sys_path_has_program_dir"], "infra/ must not stay on sys.path (it shadows names)"


def test_entry_runs_without_any_install_of_the_project(checkout: Path) -> None:
    """`pulumi install` installs the lock only: the site-packages without .pth files (no editable
    finder, `python -S`) is enough for the entry to find this checkout's packages."""
    site_packages = sysconfig.get_paths()["purelib"]
    found = _run_as_language_host(checkout, [sys.executable, "-S"], {"PYTHONPATH": site_packages})
    assert not found["editable_finder_loaded"]
    _assert_declares_the_checkout(found, checkout)


def test_a_second_checkout_deploys_its_own_code_despite_another_editable_install(checkout: Path) -> None:
    """The venv's editable install points at this repository; the copy must still run the copy."""
    finder = Path(sysconfig.get_paths()["purelib"]) / "__editable__.crowdfunding_on_aws-0.1.0.pth"
    if not finder.exists():
        pytest.skip("the venv has no editable install of the project (`make install` adds one)")
    found = _run_as_language_host(checkout, [sys.executable], {})
    assert found["editable_finder_loaded"]
    _assert_declares_the_checkout(found, checkout)


def test_pulumi_install_finds_the_pinned_requirements_in_the_program_directory() -> None:
    """The host's pip toolchain installs `requirements.txt` of the program directory (`main`),
    with the venv named in Pulumi.yaml resolved against the project root."""
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"]["toolchain"] == "pip"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    program_dir = REPO_ROOT / project["main"]
    requirements = program_dir / "requirements.txt"
    lines = [line.strip() for line in requirements.read_text().splitlines()]
    includes = [line.split(maxsplit=1)[1] for line in lines if line.startswith("-r ")]
    assert [(program_dir / include).resolve() for include in includes] == [REPO_ROOT / "requirements.lock"]
    pins = (REPO_ROOT / "requirements.lock").read_text()
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in pins.splitlines() if "==" in line}
    assert {"pulumi", "pulumi-aws", "pulumi-docker", "pyyaml", "aws-lambda-powertools"} <= pinned
