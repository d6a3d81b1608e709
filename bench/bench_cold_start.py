"""Cold-start proxy: each function module's import time in a fresh interpreter, and archive size.

Run: .venv/bin/python bench/bench_cold_start.py [repeats]
Import time includes boto3 and Powertools (on Lambda they come from the runtime and the layer),
measured inside a fresh process so interpreter start-up is excluded; median of `repeats` (5).
Targets: ≤ 350 ms import, ≤ 200 KB archive.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambdas import packaging  # noqa: E402
from lambdas.shared import contract  # noqa: E402
from lambdas.specs import catalog  # noqa: E402

IMPORT_TARGET_MS = 350
ARCHIVE_TARGET_BYTES = 200 * 1024
PROBE = "import time; t = time.perf_counter(); import lambdas.{name}; print((time.perf_counter() - t) * 1000)"


def _environment() -> dict[str, str]:
    """Every variable any function requires, with placeholder values (importing creates no client)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env.update(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    names = [getattr(contract, n) for n in dir(contract) if n.startswith("ENV_")]
    names += [spec.env_var for spec in contract.TABLES]
    for name in names:
        env[name] = "300" if name.endswith(("SECONDS", "ATTEMPTS")) else "placeholder"
    return env


def measure(name: str, repeats: int, env: dict[str, str]) -> float:
    """Median import time of `lambdas.<name>` in fresh interpreters, in ms."""
    samples = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(name=name)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples)


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    env = _environment()
    worst_ms, worst_size, ok = 0.0, 0, True
    print(f"{'function':<20} {f'import ms (median of {repeats})':>26} {'archive bytes':>14}")
    with tempfile.TemporaryDirectory() as out:
        for name in catalog.function_names():
            ms = measure(name, repeats, env)
            size = packaging.build_archive(name, Path(out)).stat().st_size
            worst_ms, worst_size = max(worst_ms, ms), max(worst_size, size)
            over = ms > IMPORT_TARGET_MS or size > ARCHIVE_TARGET_BYTES
            ok = ok and not over
            print(f"{name:<20} {ms:>26.1f} {size:>14,}{'  <-- over target' if over else ''}")
    print(
        f"worst import {worst_ms:.1f} ms (target <= {IMPORT_TARGET_MS}); "
        f"largest archive {worst_size:,} B (target <= {ARCHIVE_TARGET_BYTES:,})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
