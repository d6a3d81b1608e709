"""The report as Markdown (printed, posted on pull requests) and JSON (for tools and diff mode)."""

from __future__ import annotations

from typing import Any

from toolchain.report import Report
from toolchain.report.costs import round_money
from toolchain.report.diff import StackDiff, render_diff
from toolchain.report.estimate import LineItem

UNCONFIRMED_MARK = "†"


def money(value: float) -> str:
    """Dollars with cents (`$1,234.56`)."""
    return f"${round_money(value):,.2f}"


def quantity(value: float) -> str:
    """A quantity with as many decimals as it needs."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def unit_price(line: LineItem) -> str:
    """`$0.059` linked to its source page, marked when unconfirmed."""
    mark = "" if line.confirmed else UNCONFIRMED_MARK
    price = f"{line.unit_price:.10f}".rstrip("0").rstrip(".")
    return f"[${price}]({line.source}){mark}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def dominant_sentence(report: Report) -> str:
    """Which items make up most of the idle bill."""
    cost = report.cost
    total = cost.idle_total
    if total <= 0:
        return "Idle, the stack costs nothing."
    parts = [f"{li.item} {money(li.idle_cost)} ({li.idle_cost / total:.0%})" for li in cost.dominant("idle")]
    return "Idle cost is dominated by: " + "; ".join(parts) + "."


def render_markdown(report: Report, diff: StackDiff | None = None) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    cost = report.cost
    counts = report.policies.count()
    lines: list[str] = [
        f"<!-- crowdfunding-report:{report.stack} -->",
        f"# Reviewer's report: stack `{report.stack}` ({cost.region})",
        "",
        f"**Monthly estimate: {money(cost.idle_total)} idle, {money(cost.load_total)} at the stated load** "
        f"({cost.load.api_requests:,} API requests and {cost.load.payments:,} payments a month) · "
        f"{len(report.synthesis.cloud_resources)} cloud resources · policies: "
        + (
            f"{counts.get('failed', 0)} failed, {counts.get('waived', 0)} waived, "
            f"{counts.get('passed', 0)} passed"
            if report.policies.available
            else report.policies.problem
        ),
        "",
        dominant_sentence(report),
        "",
    ]
    if diff is not None:
        lines += render_diff(diff)
    lines += _resources_section(report)
    lines += _cost_section(report)
    lines += _policy_section(report)
    lines += [
        "## Architecture",
        "",
        "Generated from the synthesized resources: components are subgraphs; solid arrows are "
        "subscriptions (labelled with the events their filter passes), schedules and invokes; thick "
        "arrows are event source mappings and load-balancer traffic; dotted arrows are dead-letter "
        "redrives and IAM grants.",
        "",
        "```mermaid",
        report.diagram.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def _resources_section(report: Report) -> list[str]:
    lines = ["## Resources by component", "", "| component | type | count |", "|---|---|---:|"]
    for component, types in report.components.items():
        for index, (type_name, count) in enumerate(types.items()):
            lines.append(f"| {_cell(component) if index == 0 else ''} | `{type_name}` | {count} |")
        lines.append(f"| | **{_cell(component)} total** | **{sum(types.values())}** |")
    lines += ["", f"**{len(report.synthesis.cloud_resources)} cloud resources in total.**", ""]
    return lines


def _cost_section(report: Report) -> list[str]:
    cost = report.cost
    lines = [
        "## Monthly cost estimate",
        "",
        f"List prices for {cost.region} from the price table compiled {cost.prices_compiled} "
        f"(`toolchain/report/prices/{cost.region}.yaml`; each unit price links its source page, "
        f"{UNCONFIRMED_MARK} = not confirmed against the page on that date). Free tiers are subtracted "
        "per line.",
        "",
        "| group | item | unit | unit price | free | idle qty | idle / month | load qty | load / month "
        "| from |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for line in cost.lines:
        lines.append(
            f"| {line.group} | {_cell(line.item)} | {_cell(line.unit)} | {unit_price(line)} | "
            f"{quantity(line.free) if line.free else ''} | {quantity(line.idle_quantity)} | "
            f"{money(line.idle_cost)} | {quantity(line.load_quantity)} | {money(line.load_cost)} | "
            f"{_cell(line.basis)} |"
        )
    lines.append(f"| | **total** | | | | | **{money(cost.idle_total)}** | | **{money(cost.load_total)}** | |")
    lines += [
        "",
        "By group (idle / load): "
        + ", ".join(
            f"{group} {money(idle)} / {money(cost.by_group('load').get(group, 0.0))}"
            for group, idle in cost.by_group("idle").items()
        )
        + ".",
        "",
    ]
    lines += ["Assumptions:", ""] + [f"- {text}" for text in cost.assumptions]
    if cost.notes:
        lines += ["", "Notes:", ""] + [f"- {text}" for text in cost.notes]
    lines.append("")
    return lines


def _policy_section(report: Report) -> list[str]:
    results = report.policies
    lines = ["## Policy findings", ""]
    if not results.available:
        return [*lines, f"{results.problem}: no rules were evaluated.", ""]
    counts = results.count()
    lines.append(
        f"{counts.get('failed', 0)} failed, {counts.get('waived', 0)} waived, "
        f"{counts.get('undecided', 0)} undecided, {counts.get('passed', 0)} passed "
        f"({len(results.findings)} rule/resource pairs)."
    )
    lines.append("")
    for status, title, column in (
        ("failed", "Failed", "problem and fix"),
        ("waived", "Waived", "reason (recorded in code)"),
        ("undecided", "Undecided", "why"),
    ):
        found = results.with_status(status)
        if not found:
            continue
        lines += [f"### {title}", "", f"| rule | resource | {column} |", "|---|---|---|"]
        lines += [f"| `{f.rule}` | {_cell(f.resource)} | {_cell(f.message)} |" for f in found]
        lines.append("")
    passed = results.passed_by_rule()
    if passed:
        lines += ["### Passed", "", "| rule | resources |", "|---|---:|"]
        lines += [f"| `{rule}` | {n} |" for rule, n in passed.items()]
        lines.append("")
    return lines


def render_json(report: Report, diff: StackDiff | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (also the input of diff mode)."""
    cost = report.cost
    document: dict[str, Any] = {
        "stack": report.stack,
        "region": cost.region,
        "pricesCompiled": cost.prices_compiled,
        "load": {"apiRequestsPerMonth": cost.load.api_requests, "paymentsPerMonth": cost.load.payments},
        "totals": {"idleUsd": round_money(cost.idle_total), "loadUsd": round_money(cost.load_total)},
        "dominantIdle": [li.item for li in cost.dominant("idle")],
        "components": report.components,
        "resources": report.resource_records(),
        "cost": {
            "lines": [
                {
                    "group": li.group,
                    "item": li.item,
                    "priceKey": li.price_key,
                    "unit": li.unit,
                    "unitPriceUsd": li.unit_price,
                    "free": li.free,
                    "idleQuantity": li.idle_quantity,
                    "idleUsd": round_money(li.idle_cost),
                    "loadQuantity": li.load_quantity,
                    "loadUsd": round_money(li.load_cost),
                    "basis": li.basis,
                    "source": li.source,
                    "confirmed": li.confirmed,
                }
                for li in cost.lines
            ],
            "assumptions": cost.assumptions,
            "notes": cost.notes,
        },
        "policies": {
            "available": report.policies.available,
            "problem": report.policies.problem,
            "counts": dict(report.policies.count()),
            "findings": [f.as_dict() for f in report.policies.findings],
        },
        "diagram": report.diagram,
    }
    if diff is not None:
        document["diff"] = diff.as_dict()
    return document
