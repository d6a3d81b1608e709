"""Entry point for the Pulumi CLI (`Pulumi.yaml` has `main: infra/`).

The Python language host runs this file with the working directory set to infra/ and
`runpy.run_path(".")` (sdk/python/cmd/pulumi-language-python-exec): infra/ is on sys.path, the
checkout's root is not. So the root and the library's project directory (components/, where the
`awsblocks` package lives) go first on sys.path, and infra/ comes off it (its module
names — config, data, docs, report — must not shadow installed ones). A path entry beats an
editable install of another checkout (setuptools appends its finder after the path finder), so
a second clone or a worktree deploys its own code; the check below refuses to run otherwise.
`pulumi install` installs infra/requirements.txt (the pinned lock) and never this project.
"""

import sys
from pathlib import Path

PROGRAM_DIR = Path(__file__).resolve().parent
CHECKOUT = PROGRAM_DIR.parent
LIBRARY = CHECKOUT / "components"
"""The library's project directory: `pip install ./components` installs it elsewhere."""
PROJECT_PACKAGES = ("infra", "awsblocks", "lambdas", "dashboards", "app")
"""The top-level packages of this checkout the program imports."""


def _resolves_to(entry: str, directory: Path) -> bool:
    try:
        return Path(entry or ".").resolve() == directory
    except OSError:
        return False


def use_this_checkout() -> None:
    """Make this checkout's packages the ones `import` finds, whatever else the venv holds."""
    ours = (PROGRAM_DIR, CHECKOUT, LIBRARY)
    sys.path[:] = [entry for entry in sys.path if not any(_resolves_to(entry, path) for path in ours)]
    sys.path[:0] = [str(CHECKOUT), str(LIBRARY)]


def foreign_modules() -> list[str]:
    """Loaded project packages that come from another checkout (e.g. an editable install)."""
    found = []
    for name in PROJECT_PACKAGES:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is not None and not Path(origin).resolve().is_relative_to(CHECKOUT):
            found.append(f"{name} from {Path(origin).resolve().parent}")
    return found


use_this_checkout()

from infra.stack import main  # noqa: E402

if foreign := foreign_modules():
    import pulumi

    raise pulumi.RunError(
        f"this program is {CHECKOUT}, but Python loaded {', '.join(foreign)}; run `pulumi up` "
        "from a fresh process, or remove the other checkout's install from the virtualenv "
        "(`pip uninstall crowdfunding-on-aws awsblocks`)"
    )

main()
