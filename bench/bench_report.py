"""Time the reviewer's report per stack: `.venv/bin/python bench/bench_report.py [stack ...]`.

Target: one stack's report in under 10 seconds. Each stack is timed as `make report` runs it:
a fresh process (`python -m toolchain.report <stack> --json-only`, interpreter start and imports
included), best and median of `--runs`, plus the in-process split between synthesis and the
report itself (estimate, topology, policies, diagram, rendering) from one more run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 10.0


def time_process(stack: str) -> float:
    """Wall-clock seconds of one `python -m toolchain.report <stack> --json-only`."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "toolchain.report", stack, "--json-only"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def time_in_process(stack: str) -> tuple[float, float]:
    """(synthesis seconds, report seconds) in this process."""
    import contextlib

    from toolchain.project import synthesize
    from toolchain.report import build_report
    from toolchain.report.__main__ import stated_load
    from toolchain.report.render import render_json, render_markdown

    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        synthesis = synthesize(stack)
    synthesized = time.perf_counter()
    report = build_report(synthesis, stated_load(stack, None, None))
    render_markdown(report)
    render_json(report)
    return synthesized - started, time.perf_counter() - synthesized


def main() -> int:
    from toolchain.project import stack_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", help="stacks to time (default: every committed stack)")
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per stack (default 3)")
    args = parser.parse_args()
    stacks = args.stacks or stack_names()
    print(
        f"{'stack':<8} {'best s':>7} {'median s':>9} {'synth s':>8} {'report s':>9}"
        f"  target < {TARGET_SECONDS:g} s"
    )
    worst = 0.0
    for stack in stacks:
        try:
            runs = [time_process(stack) for _ in range(args.runs)]
            synth_s, report_s = time_in_process(stack)
        except Exception as exc:  # a stack that fails to synthesize is reported, not timed
            print(f"{stack:<8} failed: {type(exc).__name__} (run `make report STACK={stack}` to see why)")
            worst = max(worst, TARGET_SECONDS)
            continue
        best, median = min(runs), statistics.median(runs)
        worst = max(worst, median)
        verdict = "ok" if median < TARGET_SECONDS else "SLOW"
        print(
            f"{stack:<8} {best:>7.2f} {median:>9.2f} {synth_s:>8.2f} {report_s:>9.2f}  {verdict}", flush=True
        )
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
