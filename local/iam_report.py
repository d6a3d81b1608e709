"""`make iam-report`: per role, the grants used and unused and the calls denied, of the running
local system, or of a demo run when none is running (the report itself: toolchain.embedded.iam_report)."""

from __future__ import annotations

import json
import sys

from local import PRODUCT
from local.demo import DEMO_GATEWAY, DemoError, tell
from toolchain.embedded.iam_report import report_text
from toolchain.embedded.system import STATE_FILE, LocalSystem, SystemOptions


def main() -> int:
    """`make iam-report`: the running system's report, or a demo run's."""
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        print(f"IAM report of the running local system at {state['api']}", flush=True)
        print(report_text(state["emulator"], state["deployment"]))
        return 0
    print("no running system found: starting one and telling the demo story first …", flush=True)
    options = SystemOptions.from_environment(PRODUCT)
    options.environment_overrides = {**DEMO_GATEWAY, **options.environment_overrides}
    system = LocalSystem(options, progress=lambda line: print(f"   {line}", flush=True))
    try:
        system.start()
        tell(system.state())
        print(system.iam_report())
    except DemoError as exc:
        print(f"demo stopped: {exc}", file=sys.stderr)
        print(system.iam_report())
        return 1
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:  # the system could not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
