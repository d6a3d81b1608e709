"""Entry point for the Pulumi CLI (`Pulumi.yaml` has `main: infra/`)."""

from infra.stack import main

main()
