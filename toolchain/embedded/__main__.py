"""The embedded runner for any project built from the library: `python -m toolchain.embedded`.

It deploys the project's program on the emulator and drives its functions; it serves no API (a
product names its ASGI app in its own entry: this product's is `python -m local`, `make run`).
"""

from __future__ import annotations

import sys

from toolchain.embedded.system import LocalProduct, SystemOptions, run_forever
from toolchain.project import PROJECT

if __name__ == "__main__":
    sys.exit(run_forever(SystemOptions.from_environment(LocalProduct(title=PROJECT.name))))
