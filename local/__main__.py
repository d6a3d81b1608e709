"""`make run`: the crowdfunding system on the embedded AWS emulator, in the foreground."""

from __future__ import annotations

import sys

from local import PRODUCT
from toolchain.embedded.system import SystemOptions, run_forever

if __name__ == "__main__":
    sys.exit(run_forever(SystemOptions.from_environment(PRODUCT)))
