"""awsblocks: secure-by-default Pulumi components for services on AWS.

One component per module, grouped by concern: `network`, `security`, `messaging`, `functions`,
`data`, `web`, `auth`, `delivery`, `observability`; `testing` is the offline harness (Pulumi mocks
that record every resource) this library's tests and its users' tests share. Every component
registers under `awsblocks:index:<Name>`.
"""

__version__ = "0.2.0"
