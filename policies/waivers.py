"""Recorded exceptions to the rules: (rule id, resource-name pattern) → why it is acceptable.

A waiver turns a failed finding into a waived one; reports count it separately, so an
exception stays visible. The pattern is an `fnmatch` glob on the resource's logical name.
Add one only for a finding that cannot be fixed, and say why in the reason; a rule that
looks wrong is fixed in `policies/rules.py`, never waived here.
"""

from __future__ import annotations

WAIVERS: dict[tuple[str, str], str] = {}
