"""This product on one machine: `make run`'s knobs and banner, `make demo`'s story, `make audit`.

The toolchain's embedded runner (`toolchain/embedded/`) knows any program built from the library;
what it cannot learn from the program is here: the API's ASGI app, the fake payment gateway's
knobs (`PG_*`, which override the functions' settings of the same name), the banner's words.
"""

from toolchain.embedded.system import LocalProduct

GATEWAY_KNOBS: tuple[str, ...] = ("PG_TRANSIENT_FAILURE_RATE", "PG_DECLINE_RATE", "PG_LATENCY_MS", "PG_SEED")
"""`make run` variables that override the stack's payment-gateway behaviour."""

PRODUCT = LocalProduct(
    title="crowdfunding",
    api_app="app.main:app",
    try_path="/api/fundings",
    environment_overrides=GATEWAY_KNOBS,
    hints=(
        "  get a token   make token USER=alice     (then: -H 'Authorization: Bearer <token>')",
        "  watch events  make demo    |    tail -f .run/*.log    |    make iam-report",
    ),
)
"""The crowdfunding product as the embedded runner serves it."""
