"""Policy checks every stack must pass, usable from tests, reports and `pulumi preview --policy-pack`.

- `policies.rules`: one function per rule over a `ResourceView` (`RULES`).
- `policies.engine.evaluate(resources)`: a `Finding` (passed / failed / waived) per (rule, resource).
- `policies.adapters`: views of the mock harness's resources (`evaluate_synthesis(synthesis)`).
- `policies.pack`: the same rules as a `pulumi_policy` PolicyPack (`policies/__main__.py`).
- `policies.waivers.WAIVERS`: recorded exceptions, each with its reason.
"""

from policies.engine import Finding, evaluate, failures, summary
from policies.rules import RULES, Rule
from policies.view import ResourceView, StackIndex

__all__ = ["RULES", "Finding", "ResourceView", "Rule", "StackIndex", "evaluate", "failures", "summary"]
