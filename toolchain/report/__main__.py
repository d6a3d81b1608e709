"""`make report STACK=<name> [BASE=<git ref>]`: the reviewer's report of one stack.

python -m toolchain.report dev                      # report/dev.md + report/dev.json, Markdown printed
python -m toolchain.report dev --base origin/main   # plus what changed against that ref
python -m toolchain.report dev --payments 50000     # override the stated load
python -m toolchain.report dev --json-only          # the JSON document on stdout, no files
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import pulumi

from toolchain.project import PROJECT, REPO_ROOT, read_stack_config, stack_names, synthesize
from toolchain.report import build_report
from toolchain.report.diff import BaseRefError, diff_reports, synthesize_at_ref
from toolchain.report.estimate import Load
from toolchain.report.render import render_json, render_markdown

LOAD_KEYS = {"api_requests": "loadApiRequestsPerMonth", "payments": "loadPaymentsPerMonth"}
"""The project's config keys that state its load (Pulumi.yaml gives their defaults); 0 when absent."""


def stated_load(stack: str, api_requests: int | None, payments: int | None) -> Load:
    """The stack config's load (`<project>:loadApiRequestsPerMonth`, `…PaymentsPerMonth`), flags first."""
    raw = read_stack_config(stack)
    given = {"api_requests": api_requests, "payments": payments}
    found: dict[str, int] = {}
    for field_name, key in LOAD_KEYS.items():
        value = given[field_name]
        if value is None:
            text = raw.get(f"{PROJECT.name}:{key}") or "0"
            try:
                value = int(text)
            except ValueError:
                raise ValueError(
                    f"{PROJECT.name}:{key}: {text!r} is not valid; allowed: a whole number >= 0"
                ) from None
        found[field_name] = value
    return Load(**found)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m toolchain.report", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--base", help="git ref to compare with (resources and cost delta)")
    parser.add_argument("--api-requests", type=int, help="API requests per month (default: stack config)")
    parser.add_argument("--payments", type=int, help="payments per month (default: stack config)")
    parser.add_argument(
        "--out-dir", default=str(REPO_ROOT / "report"), help="where to write <stack>.md/.json"
    )
    parser.add_argument("--json-only", action="store_true", help="print the JSON document, write nothing")
    return parser


def main(argv: list[str]) -> int:
    """CLI entry."""
    args = _parser().parse_args(argv)
    stacks = stack_names()
    if args.stack not in stacks:
        print(
            f"error: no stack file Pulumi.{args.stack}.yaml; committed stacks: {', '.join(stacks)}",
            file=sys.stderr,
        )
        return 2
    for flag, value in (("--api-requests", args.api_requests), ("--payments", args.payments)):
        if value is not None and value < 0:
            print(f"error: {flag} {value} is not allowed; allowed: a whole number >= 0", file=sys.stderr)
            return 2
    started = time.perf_counter()
    try:
        load = stated_load(args.stack, args.api_requests, args.payments)
        # the program's own warnings go to stderr: stdout is the Markdown (or the JSON document)
        with contextlib.redirect_stdout(sys.stderr):
            head = build_report(synthesize(args.stack), load)
    except (ValueError, pulumi.RunError) as exc:  # config refused (ours, the CLI's or the program's)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the program itself refused (a component's declaration-time check)
        print(
            f"error: stack {args.stack!r} could not be synthesized: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    diff = None
    if args.base:
        try:
            base_synthesis = synthesize_at_ref(args.stack, args.base)
        except BaseRefError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        base = build_report(base_synthesis, load) if base_synthesis is not None else None
        diff = diff_reports(base, head, args.base)
    document = render_json(head, diff)
    if args.json_only:
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    markdown = render_markdown(head, diff)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.stack}.md").write_text(markdown)
    (out / f"{args.stack}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(markdown)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {out / (args.stack + '.md')} and {out / (args.stack + '.json')} in {elapsed:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
