"""`make preview STACK=<name>`: what `pulumi preview` would create, offline.

Runs the real program for the stack's config under the mock runtime (`toolchain.project`) and
prints the resources as a tree by component, then a count per resource type and a total.
"""

from __future__ import annotations

import sys
from collections import Counter

import pulumi
from awsblocks.testing import DeclaredResource, Synthesis, short_type

from toolchain.project import PROJECT, read_stack_config, stack_names, stand_ins, synthesize


def render_tree(synthesis: Synthesis) -> str:
    """The resources as `pulumi preview` lays them out: a tree under the stack."""
    children: dict[str | None, list[DeclaredResource]] = {}
    for resource in synthesis.resources:
        children.setdefault(resource.parent, []).append(resource)
    for siblings in children.values():  # registration order is async; sort for stable, diffable output
        siblings.sort(key=lambda r: (r.custom, not r.is_provider, short_type(r.type), r.name))
    width = max((len(short_type(r.type)) for r in synthesis.resources), default=20) + 12
    lines = [
        f"     {'Type':<{width}} Name",
        f" +   {'pulumi:pulumi:Stack':<{width}} {PROJECT.name}-{synthesis.stack}",
    ]

    def walk(parent: str | None, prefix: str) -> None:
        siblings = children.get(parent, [])
        for index, resource in enumerate(siblings):
            last = index == len(siblings) - 1
            branch = "└─ " if last else "├─ "
            label = f"{prefix}{branch}{short_type(resource.type)}"
            lines.append(f" +   {label:<{width}} {resource.name}")
            walk(resource.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    return "\n".join(lines)


def render_counts(synthesis: Synthesis) -> str:
    """A count per resource type and the totals `pulumi preview` would print."""
    counts = Counter(short_type(r.type) for r in synthesis.cloud_resources)
    lines = ["Resources by type:"]
    for type_name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {count:>4}  {type_name}")
    components = sum(1 for r in synthesis.resources if r.is_component)
    providers = sum(1 for r in synthesis.resources if r.is_provider)
    cloud = len(synthesis.cloud_resources)
    total = cloud + components + providers + 1  # + the stack itself
    lines += [
        "",
        "Resources:",
        f"    + {total} to create ({cloud} cloud resources, {components} components, "
        f"{providers} provider{'s' if providers != 1 else ''}, 1 stack)",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """CLI entry: `python -m toolchain.preview <stack>`."""
    stacks = stack_names()
    if len(argv) != 1 or not argv[0]:
        print(f"usage: make preview STACK=<name>   (committed stacks: {', '.join(stacks)})", file=sys.stderr)
        return 2
    stack = argv[0]
    if stack not in stacks:
        print(
            f"error: no stack file Pulumi.{stack}.yaml; committed stacks: {', '.join(stacks)}",
            file=sys.stderr,
        )
        return 2
    print(
        f"Previewing stack '{stack}' offline (the real program under Pulumi's mock runtime; no AWS calls)\n"
    )
    try:
        synthesis = synthesize(stack)
    except (ValueError, pulumi.RunError) as exc:  # config refused (the CLI's checks or the program's)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(render_tree(synthesis))
    print()
    print(render_counts(synthesis))
    if filled := stand_ins(read_stack_config(stack, with_stand_ins=False)):
        print(
            f"\nShown as it will be once configured: Pulumi.{stack}.yaml leaves {', '.join(sorted(filled))} "
            "to you, so the preview used stand-ins (stand-ins.yaml); `pulumi up` refuses the "
            "stack until you set them (README: Deploying to real AWS)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
