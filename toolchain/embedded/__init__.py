"""The embedded default: the whole system on one machine, derived from the Pulumi program.

`make run` starts the AWS emulator (moto, 127.0.0.1 only), runs the real `infra` program for the
`local` stack under a mock layer that creates its resources on the emulator (`mocks.py`), then
serves the API and drives every Lambda function the way AWS would (`runtime.py`, `system.py`).
"""
