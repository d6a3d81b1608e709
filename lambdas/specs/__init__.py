"""One declarative spec per function: its trigger, environment, AWS access and sizing.

`lambdas/specs/<function>.py` holds `SPEC`, a `model.FunctionSpec`; `catalog.all_specs()` returns
every spec in declaration order. The infrastructure reads these without importing any handler (or
Powertools, or boto3), and each handler reads its own spec at cold start, so a fact lives in one
place. This file stays empty of imports: a function's archive carries it with the model and that
function's spec only.
"""
