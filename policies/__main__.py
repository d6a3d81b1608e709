"""Policy pack entry point: `pulumi preview --policy-pack policies` runs this file.

The Pulumi CLI starts it with the virtualenv named in PulumiPolicy.yaml (the repo's .venv).
`PolicyPack(...)` serves the policies to the engine and does not return.
"""

import sys
from pathlib import Path

# The CLI runs this file from policies/; make the repo importable even without `pip install -e .`.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.pack import PACK_DESCRIPTION, PACK_NAME, build_policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    description=PACK_DESCRIPTION,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
