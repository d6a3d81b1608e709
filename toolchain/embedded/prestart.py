"""A process that starts before it knows its environment, so its imports overlap the deployment.

The API's process needs the task definition's environment and the task role's credentials, which
exist only once the program is deployed and the role assumed; its imports (the web framework,
boto3) do not. `python -m toolchain.embedded.prestart MODULE` imports the libraries named in PRELOAD
(and any given with `--preload`), then waits for one JSON line on stdin:
`{"env": {...}, "argv": [...]}`. It replaces its whole environment with `env` (nothing of the
runner's survives) and runs MODULE as `python -m MODULE *argv` would. Nothing of the
application's own code is imported before its environment is set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import sys

PRELOAD = ("uvicorn", "uvicorn.main", "fastapi", "starlette", "pydantic", "boto3", "botocore.session", "jwt")
"""Libraries an ASGI API on AWS imports, whatever the application (absent ones are skipped)."""


def main(argv: list[str]) -> int:
    """Preload, wait for the environment, become `python -m MODULE ...`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", help="the module to run once the environment arrives (e.g. uvicorn)")
    parser.add_argument("--preload", action="append", default=[], help="another module to import up front")
    args = parser.parse_args(argv)
    from toolchain.embedded.zygote import watch_parent

    watch_parent(os.getppid())
    for name in (*PRELOAD, *args.preload):
        with contextlib.suppress(ImportError):
            __import__(name)
    line = sys.stdin.readline()
    if not line:
        print("prestart: the runner went away before sending the environment", file=sys.stderr)
        return 1
    spec = json.loads(line)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in spec["env"].items()})
    sys.argv = [args.module, *[str(a) for a in spec.get("argv", [])]]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
