"""Recorded exceptions to the rules: (rule id, resource-name pattern) → why it is acceptable.

A waiver turns a failed finding into a waived one; reports count it separately, so an
exception stays visible. The pattern is an `fnmatch` glob on the resource's logical name, on
every stack; `<stack glob>::<name glob>` (e.g. `dev::*`) limits it to the stacks it names.
Add one only for a finding that is a decision, not a defect, and say why in the reason; a
rule that looks wrong is fixed in `policies/rules.py`, never waived here.

The checkov checks the project decided not to adopt (issue 18) are waived here, each with
the reason; the rules themselves stay, so a resource that should comply still fails.
"""

from __future__ import annotations

_NON_PROD_LOGS = (
    "a development or local stack holds no customer's payment records, and its logs are for "
    "debugging this week's change: a year of them is cost without an auditor; prod keeps >= 365 "
    "days (infra/config.py refuses less on a prod stack)"
)
_NO_CERTIFICATE = (
    "this stack has no certificate until its owner configures certificateArn (an ACM certificate "
    "of their own domain), so the load balancer serves HTTP to test clients only; prod refuses to "
    "run without one and there HTTP only redirects to HTTPS"
)
_BUCKET_SIDE_CHANNELS = (
    "the stack's buckets hold the load balancer's access logs and the pipeline's build artifacts, "
    "written and read only by AWS services under bucket policies that name them"
)
_SIGNING_BUCKET = (
    "the code signing bucket holds the functions' deterministic packages and the copies AWS Signer "
    "signed, written only by `pulumi up` and Signer and read by Lambda at deployment, under a "
    "TLS-only policy with public access blocked"
)

WAIVERS: dict[tuple[str, str], str] = {
    ("logs-retention-one-year", "dev::*"): _NON_PROD_LOGS,
    ("logs-retention-one-year", "local::*"): _NON_PROD_LOGS,
    # Reserved concurrency is on the money path (payments, captures, refunds, voids, the ledger,
    # the sweeper and the closer); these two touch no money and may wait for capacity.
    ("lambda-reserved-concurrency", "notifier-function"): (
        "emails backers about outcomes already recorded; a throttled batch waits in its queue and is "
        "retried, so reserving capacity for it would only take it from the money path"
    ),
    ("lambda-reserved-concurrency", "books-auditor-function"): (
        "a read-only audit every 15 minutes over a horizon of hours; a throttled run is retried by "
        "EventBridge and changes no money, so it does not get capacity the money path may need"
    ),
    ("lambda-in-vpc", "*-function"): (
        "the functions call only AWS APIs (DynamoDB, SQS, SNS, KMS, SES, Lambda) over TLS with IAM "
        "authentication, and the payment gateway over HTTPS; a VPC adds nothing to that path but "
        "cold-start ENI setup, NAT or per-AZ interface endpoints ($10 a month each) and a new way "
        "to lose egress"
    ),
    ("s3-access-logging", "api-*"): (
        _BUCKET_SIDE_CHANNELS + "; access logs of the log bucket itself would need a third bucket of "
        "logs about logs, and CloudTrail data events are the audit trail where one is required"
    ),
    ("s3-event-notifications", "api-*"): (
        _BUCKET_SIDE_CHANNELS + "; nothing reacts to a new object, so a notification would have no reader"
    ),
    ("s3-replication", "api-*"): (
        _BUCKET_SIDE_CHANNELS + "; both are reproducible or short-lived (logs expire by lifecycle, "
        "artifacts are rebuilt from the repository), so a second region would double their cost for "
        "nothing that must survive a regional outage"
    ),
    # The code signing bucket (awsblocks.functions.code_signing): function packages and signed copies.
    ("s3-access-logging", "code-signing-artifacts"): _SIGNING_BUCKET
    + (
        "; who uploaded or signed what is in CloudTrail (PutObject, StartSigningJob) and in each "
        "signing job's record"
    ),
    ("s3-event-notifications", "code-signing-artifacts"): _SIGNING_BUCKET
    + ("; `pulumi up` starts the signing job itself, so nothing reacts to a new object"),
    ("s3-replication", "code-signing-artifacts"): _SIGNING_BUCKET
    + (
        "; every object is rebuilt from the repository and signed again by `pulumi up`, and Lambda "
        "keeps its own copy of deployed code, so a regional outage loses nothing"
    ),
    # A delivery pipeline's artifact bucket (awsblocks.delivery names it `<pipeline>-artifacts`)
    # is the same kind of bucket whatever the pipeline is called.
    ("s3-access-logging", "*-artifacts"): _BUCKET_SIDE_CHANNELS,
    ("s3-event-notifications", "*-artifacts"): _BUCKET_SIDE_CHANNELS,
    ("s3-replication", "*-artifacts"): _BUCKET_SIDE_CHANNELS + "; artifacts are rebuilt from the repository",
    ("alb-listener-tls", "dev::*"): _NO_CERTIFICATE,
    ("alb-listener-tls", "local::*"): _NO_CERTIFICATE,
    ("alb-target-group-tls", "*-tg"): (
        "TLS ends at the load balancer (TLS 1.3 policy); the target is a Fargate task in a private "
        "subnet whose security group admits only the load balancer's group, and re-encrypting would "
        "need a certificate and key inside every container (awsblocks.web.web_service, helper G's)"
    ),
}
