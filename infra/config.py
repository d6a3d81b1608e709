"""Typed, validated stack configuration: every key the program reads, in one table.

The program calls `load()` before it declares any resource, so a bad `Pulumi.<stack>.yaml`
fails fast with a message naming the key, the value given and what is allowed. `load()` reads
each key through `pulumi.Config`; the checks reuse the library's own constants (NAT strategies,
log retention periods, Fargate sizes, MFA modes, the ACM ARN pattern), so the config and the
component refuse the same values.

From `KEYS` come two generated documents (`make docs`; a test keeps them in step): the README's
config table and the project-level config schema in `Pulumi.yaml`, with which the Pulumi CLI
itself refuses a key the project does not declare (a typo) and a value of the wrong type. A key
whose default depends on other keys (the environment) is declared without a type and with the
default "", which this module reads as unset, because Pulumi's schema has no optional key
without a default (pulumi/pulumi#21797).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from awsblocks.auth.user_pool import MFA_MODES
from awsblocks.aws_values import ACM_CERTIFICATE_ARN, FARGATE_MEMORY_MB, LOG_RETENTION_DAYS
from awsblocks.core import EMAIL_ADDRESS
from awsblocks.network.cidr import MAX_AZS, MAX_VPC_PREFIX, MIN_VPC_PREFIX
from awsblocks.network.vpc import NAT_STRATEGIES

PROJECT = "crowdfunding"
"""The config namespace (`crowdfunding:<key>`) and the Pulumi project name."""

ENVIRONMENTS = ("dev", "prod", "local")
PROD_MIN_LOG_RETENTION_DAYS = 365
"""A prod stack keeps every log group at least a year (policies: logs-retention-one-year)."""

_REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_IMAGE_URI_PATTERN = re.compile(
    r"^[a-z0-9][a-z0-9.-]*(:\d+)?/[a-z0-9._/-]+(:\w[\w.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
FARGATE_CPU_UNITS = tuple(FARGATE_MEMORY_MB)
_SERVICE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


class ConfigError(ValueError):
    """One or more stack config values are invalid; the message lists every problem."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid stack config for stack '{stack}' (Pulumi.{stack}.yaml):\n{lines}\n"
            "Fix the value with `pulumi config set <key> <value>` or edit the stack file."
        )


class _Missing:
    def __repr__(self) -> str:
        return "(required)"


REQUIRED: Any = _Missing()


def _parse_int(raw: str) -> int:
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise ValueError("expected a whole number")
    return int(raw)


def _parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return value


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError("expected true or false")


def _parse_str_list(raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError("expected a list of strings") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _parse_int,
    "number": _parse_float,
    "boolean": _parse_bool,
    "list of strings": _parse_str_list,
}


@dataclass(frozen=True)
class Key:
    """One stack config key: its type, default, meaning and rule."""

    name: str
    kind: str
    default: Any
    doc: str
    allowed: str
    check: Callable[[Any], bool] = lambda _value: True
    namespace: str = PROJECT
    default_text: str = ""
    """How the README shows a default that depends on other keys (e.g. on the environment)."""

    @property
    def full_name(self) -> str:
        """The key as written in `Pulumi.<stack>.yaml`."""
        return f"{self.namespace}:{self.name}"

    @property
    def required(self) -> bool:
        """True when the stack file must set the key."""
        return self.default is REQUIRED


def _pipeline_pattern_matches(pattern: str, value: str) -> bool:
    """Check with the pipeline component's own patterns (imported late: it loads pulumi_aws)."""
    from awsblocks.delivery import container_pipeline as pipeline

    return bool(getattr(pipeline, pattern).match(value))


def _is_cidr(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return network.version == 4 and MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX


KEYS: tuple[Key, ...] = (
    Key(
        "region",
        "string",
        REQUIRED,
        "AWS region every resource is created in.",
        "an AWS region name such as ap-northeast-2",
        lambda v: bool(_REGION_PATTERN.match(v)),
        namespace="aws",
    ),
    Key(
        "environment",
        "string",
        None,
        "Which kind of stack this is; prod turns on deletion protection checks and "
        "production sizing. Defaults to the stack name when it is one of the allowed values.",
        "one of " + ", ".join(ENVIRONMENTS),
        lambda v: v in ENVIRONMENTS,
    ),
    Key(
        "vpcCidr",
        "string",
        "10.20.0.0/16",
        "IPv4 CIDR of the VPC; subnets are carved from it by a fixed, stable layout.",
        f"an IPv4 network CIDR with a prefix from /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX} (e.g. 10.20.0.0/16)",
        _is_cidr,
    ),
    Key(
        "azCount",
        "integer",
        2,
        "How many availability zones get a public and a private subnet.",
        f"a whole number from 1 to {MAX_AZS}",
        lambda v: 1 <= v <= MAX_AZS,
    ),
    Key(
        "natStrategy",
        "string",
        REQUIRED,
        "Outbound internet for private subnets: none (no NAT; endpoints only), instance (one "
        "t4g.nano NAT instance, ~$8/month in ap-northeast-2 with its IPv4 address and volume: no "
        "HA, an instance failure or replacement cuts egress until it is back, and you own its "
        "patching: security updates install nightly, a new AMI only when it is replaced), single "
        "(one managed NAT gateway, ~$47/month with its IPv4 address) or per_az (one per AZ, "
        "survives an AZ loss). Required: a choice that costs money is never a silent default.",
        "one of " + ", ".join(NAT_STRATEGIES),
        lambda v: v in NAT_STRATEGIES,
    ),
    Key(
        "interfaceEndpoints",
        "list of strings",
        [],
        "AWS services that get an interface VPC endpoint in the private subnets "
        "(e.g. ecr.api, ecr.dkr, logs, sqs). Each costs about $10 per AZ per month.",
        'a list of service names such as ["ecr.api", "logs"]',
        lambda v: all(_SERVICE_NAME_PATTERN.match(s) for s in v) and len(set(v)) == len(v),
    ),
    Key(
        "flowLogRetentionDays",
        "integer",
        30,
        "Retention of the VPC flow-log group. At least 365 on a prod stack (an audit trail).",
        "a CloudWatch Logs retention period: " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        lambda v: v in LOG_RETENTION_DAYS,
        default_text="30, 365 when environment is prod",
    ),
    Key(
        "logRetentionDays",
        "integer",
        30,
        "Retention of every application and function log group. At least 365 on a prod stack.",
        "a CloudWatch Logs retention period: " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        lambda v: v in LOG_RETENTION_DAYS,
        default_text="30, 365 when environment is prod",
    ),
    Key(
        "deletionProtection",
        "boolean",
        False,
        "Protect stateful resources (tables, load balancer) from deletion and retain them when "
        "removed from the program. Must be true on a prod stack.",
        "true or false (true when environment is prod)",
    ),
    Key(
        "dedicatedKeys",
        "boolean",
        False,
        "Give every topic, queue, table and function log group of the payment chain its own KMS key "
        "(about $1/month each) instead of the stack's platform key.",
        "true or false",
    ),
    Key(
        "alertEmail",
        "string",
        "",
        "Address subscribed to the ops-alerts topic (alarms; SNS emails it a confirmation link). "
        "Required on a prod stack; empty elsewhere: no email subscription.",
        "an email address (empty only when environment is not prod)",
        lambda v: v == "" or bool(EMAIL_ADDRESS.match(v)),
    ),
    Key(
        "sesSender",
        "string",
        "",
        "Address the notifier sends email from (an SES identity; AWS emails it a verification link). "
        "Required by the payment chain on dev and prod stacks; a local stack may leave it empty.",
        "an email address (empty only when environment is local)",
        lambda v: v == "" or bool(EMAIL_ADDRESS.match(v)),
    ),
    Key(
        "pgTransientFailureRate",
        "number",
        0.0,
        "Simulated payment gateway: share of calls that fail transiently (retried).",
        "a number from 0 to 1",
        lambda v: 0.0 <= v <= 1.0,
    ),
    Key(
        "pgDeclineRate",
        "number",
        0.0,
        "Simulated payment gateway: share of payments declined (a final answer).",
        "a number from 0 to 1",
        lambda v: 0.0 <= v <= 1.0,
    ),
    Key(
        "pgLatencyMs",
        "integer",
        0,
        "Simulated payment gateway: added latency per call, in milliseconds.",
        "a whole number from 0 to 10000",
        lambda v: 0 <= v <= 10_000,
    ),
    Key(
        "pgSeed",
        "integer",
        0,
        "Simulated payment gateway: seed of its decisions (same seed, same answers).",
        "a whole number from 0 upwards",
        lambda v: v >= 0,
    ),
    Key(
        "retryMaxAttempts",
        "integer",
        5,
        "Processing attempts of a payment request before payment_retry gives up (payment.failed).",
        "a whole number from 1 to 20",
        lambda v: 1 <= v <= 20,
    ),
    Key(
        "retryBaseDelaySeconds",
        "integer",
        30,
        "First retry delay of payment_retry; doubles per attempt.",
        "a whole number from 0 to 900",
        lambda v: 0 <= v <= 900,
    ),
    Key(
        "retryMaxDelaySeconds",
        "integer",
        900,
        "Longest retry delay of payment_retry (SQS allows at most 900).",
        "a whole number from 0 to 900",
        lambda v: 0 <= v <= 900,
    ),
    Key(
        "reconcileAfterSeconds",
        "integer",
        600,
        "Age after which the sweeper (reconciler) acts on a payment still PENDING or APPROVED, "
        "or on its owed follow-up work (void, event).",
        "a whole number from 60 to 86400",
        lambda v: 60 <= v <= 86_400,
    ),
    Key(
        "loadApiRequestsPerMonth",
        "integer",
        1_000_000,
        "Stated load for the reviewer's report (`make report`): API requests per month the cost "
        "estimate prices beside the idle figure. Not read by the deployed program.",
        "a whole number from 0 upwards",
        lambda v: v >= 0,
    ),
    Key(
        "loadPaymentsPerMonth",
        "integer",
        10_000,
        "Stated load for the reviewer's report: payments per month (each drives the event chain: "
        "topics, queues, functions, tables). Not read by the deployed program.",
        "a whole number from 0 upwards",
        lambda v: v >= 0,
    ),
    Key(
        "apiCpu",
        "integer",
        256,
        "CPU units of one API task (1024 = one vCPU).",
        "one of " + ", ".join(map(str, FARGATE_CPU_UNITS)),
        lambda v: v in FARGATE_CPU_UNITS,
    ),
    Key(
        "apiMemoryMb",
        "integer",
        512,
        "Memory (MiB) of one API task; Fargate allows only certain sizes per apiCpu.",
        "a Fargate size for apiCpu (256: 512, 1024, 2048; 512: 1024 to 4096; 1024: 2048 to 8192; …)",
        lambda v: 512 <= v <= 122_880,
    ),
    Key(
        "apiDesiredCount",
        "integer",
        1,
        "API tasks at first deployment; autoscaling owns the count afterwards.",
        "a whole number from apiMinCount to apiMaxCount",
        lambda v: 1 <= v <= 100,
    ),
    Key(
        "apiSpot",
        "boolean",
        False,
        "Run the API tasks on Fargate Spot (interruptible, about 70% cheaper). For development stacks.",
        "true or false",
    ),
    Key(
        "apiMinCount",
        "integer",
        1,
        "Fewest API tasks autoscaling keeps. Must be at least 2 on a prod stack (spread across AZs).",
        "a whole number from 1 to 100 (2 or more when environment is prod)",
        lambda v: 1 <= v <= 100,
    ),
    Key(
        "apiMaxCount",
        "integer",
        2,
        "Most API tasks autoscaling starts (on CPU or requests per task).",
        "a whole number from 1 to 100, at least apiMinCount",
        lambda v: 1 <= v <= 100,
    ),
    Key(
        "apiImageUri",
        "string",
        "",
        "Deploy this prebuilt API image (e.g. the pipeline's `<repository>:<commit>`) instead of "
        "building app/Dockerfile. Empty: build from the working tree, tagged by content.",
        "empty, or an image reference <registry>/<repository>:<tag> or @sha256:<digest>",
        lambda v: v == "" or bool(_IMAGE_URI_PATTERN.match(v)),
    ),
    Key(
        "certificateArn",
        "string",
        "",
        "ACM certificate (in the stack's region) of the API's HTTPS listener; HTTP only redirects "
        "to it. Required on a prod stack (bearer tokens never cross the internet in clear text); "
        "empty elsewhere: plain HTTP with a warning (development only).",
        "arn:aws:acm:<region>:<account>:certificate/<id> in the stack's region (empty only when "
        "environment is not prod)",
        lambda v: v == "" or bool(ACM_CERTIFICATE_ARN.match(v)),
    ),
    Key(
        "wafEnabled",
        "boolean",
        False,
        "Put a WAF (AWS managed rules and a per-IP rate limit) in front of the API's load balancer.",
        "true or false",
    ),
    Key(
        "wafRateLimit",
        "integer",
        1000,
        "Requests one client IP may send per 5 minutes before the WAF blocks it.",
        "a whole number from 10 to 2000000000",
        lambda v: 10 <= v <= 2_000_000_000,
    ),
    Key(
        "apiDocs",
        "boolean",
        None,
        "Serve the API's interactive documents (/docs, /redoc) and /openapi.json. Off on prod: the "
        "contract is no secret, but a public console invites probing.",
        "true or false",
        default_text="true, false when environment is prod",
    ),
    Key(
        "quotaPaymentsPerMinute",
        "integer",
        10,
        "Payments one user may make per minute (every payment costs a gateway authorization: card "
        "testing). Counted across all API tasks in DynamoDB; beyond it the API answers 429 with "
        "Retry-After. 0: unlimited.",
        "a whole number from 0 (unlimited) to 1000000",
        lambda v: 0 <= v <= 1_000_000,
    ),
    Key(
        "quotaPaymentsPerCampaignPerDay",
        "integer",
        20,
        "Payments one user may make to one campaign per UTC day; beyond it 429 with Retry-After "
        "(midnight UTC). 0: unlimited.",
        "a whole number from 0 (unlimited) to 1000000",
        lambda v: 0 <= v <= 1_000_000,
    ),
    Key(
        "quotaCampaignsPerDay",
        "integer",
        10,
        "Campaigns one user may create per UTC day; beyond it 429 with Retry-After (midnight UTC). "
        "0: unlimited.",
        "a whole number from 0 (unlimited) to 1000000",
        lambda v: 0 <= v <= 1_000_000,
    ),
    Key(
        "userPoolMfa",
        "string",
        "OPTIONAL",
        "Multi-factor authentication of the API's user pool (TOTP).",
        "one of " + ", ".join(MFA_MODES),
        lambda v: v in MFA_MODES,
    ),
    Key(
        "userPoolPasswordAuth",
        "boolean",
        False,
        "Let the user pool's client sign in with USER_PASSWORD_AUTH (the local token helper needs "
        "it); otherwise SRP only.",
        "true or false",
    ),
    Key(
        "queueAgeAlarmSeconds",
        "integer",
        1200,
        "Alarm when a queue's oldest message is older than this (a stalled consumer). Above the "
        "longest payment retry delay (900 s), so a delayed retry alone does not alarm.",
        "a whole number from 60 to 1209600",
        lambda v: 60 <= v <= 1_209_600,
    ),
    Key(
        "functionErrorsThreshold",
        "integer",
        0,
        "Alarm when a function fails more than this many times in 5 minutes (0: any error).",
        "a whole number from 0 to 100000",
        lambda v: 0 <= v <= 100_000,
    ),
    Key(
        "functionThrottlesThreshold",
        "integer",
        0,
        "Alarm when a function is throttled more than this many times in 5 minutes (0: any throttle).",
        "a whole number from 0 to 100000",
        lambda v: 0 <= v <= 100_000,
    ),
    Key(
        "tableThrottlesThreshold",
        "integer",
        0,
        "Alarm when a table throttles more than this many reads and writes in 5 minutes (0: any).",
        "a whole number from 0 to 100000",
        lambda v: 0 <= v <= 100_000,
    ),
    Key(
        "alb5xxRatePercent",
        "number",
        5.0,
        "Alarm when more than this percentage of the API's requests get a 5xx answer (load balancer "
        "or service) in 5 minutes.",
        "a number above 0, up to 100",
        lambda v: 0 < v <= 100,
    ),
    Key(
        "taskShortfallMinutes",
        "integer",
        5,
        "Alarm when the API runs fewer tasks than desired for this many consecutive minutes.",
        "a whole number from 1 to 60",
        lambda v: 1 <= v <= 60,
    ),
    Key(
        "pipelineEnabled",
        "boolean",
        False,
        "Deliver the API through a CodePipeline: pushes to pipelineBranch run `make test`, build and "
        "push the image tagged with the commit and deploy it to the API service.",
        "true or false",
    ),
    Key(
        "pipelineConnectionArn",
        "string",
        "",
        "CodeConnections (CodeStar) connection the pipeline reads the repository through; create it "
        "in the console and complete the handshake first. Required when pipelineEnabled.",
        "empty, or arn:aws:codeconnections:<region>:<account>:connection/<uuid> "
        "(or arn:aws:codestar-connections:…)",
        lambda v: v == "" or _pipeline_pattern_matches("CONNECTION_ARN_PATTERN", v),
    ),
    Key(
        "pipelineRepository",
        "string",
        "",
        "Repository the pipeline builds, as owner/name. Required when pipelineEnabled.",
        "empty, or owner/name",
        lambda v: v == "" or _pipeline_pattern_matches("REPOSITORY_PATTERN", v),
    ),
    Key(
        "pipelineBranch",
        "string",
        "main",
        "Branch whose pushes start the pipeline.",
        "a git branch name",
        lambda v: _pipeline_pattern_matches("BRANCH_PATTERN", v),
    ),
    Key(
        "pipelineApproval",
        "boolean",
        False,
        "A person approves each deployment (a manual approval stage before Deploy). Must be true on "
        "a prod stack with a pipeline.",
        "true or false (true when environment is prod and pipelineEnabled)",
    ),
)
"""Every key the program reads. Add new keys here; `StackConfig` gets a matching field."""

KEYS_BY_NAME = {key.full_name: key for key in KEYS}


@dataclass(frozen=True)
class StackConfig:
    """The validated configuration of one stack."""

    stack: str
    region: str
    environment: str
    vpc_cidr: str
    az_count: int
    nat_strategy: str
    interface_endpoints: tuple[str, ...]
    flow_log_retention_days: int
    log_retention_days: int
    deletion_protection: bool
    dedicated_keys: bool
    alert_email: str
    ses_sender: str
    pg_transient_failure_rate: float
    pg_decline_rate: float
    pg_latency_ms: int
    pg_seed: int
    retry_max_attempts: int
    retry_base_delay_seconds: int
    retry_max_delay_seconds: int
    reconcile_after_seconds: int
    load_api_requests_per_month: int
    load_payments_per_month: int
    api_cpu: int
    api_memory_mb: int
    api_desired_count: int
    api_spot: bool
    api_min_count: int
    api_max_count: int
    api_image_uri: str
    certificate_arn: str
    waf_enabled: bool
    waf_rate_limit: int
    api_docs: bool
    quota_payments_per_minute: int
    quota_payments_per_campaign_per_day: int
    quota_campaigns_per_day: int
    user_pool_mfa: str
    user_pool_password_auth: bool
    queue_age_alarm_seconds: int
    function_errors_threshold: int
    function_throttles_threshold: int
    table_throttles_threshold: int
    alb5xx_rate_percent: float
    task_shortfall_minutes: int
    pipeline_enabled: bool
    pipeline_connection_arn: str
    pipeline_repository: str
    pipeline_branch: str
    pipeline_approval: bool

    @property
    def name_prefix(self) -> str:
        """`<project>-<stack>-`: what the components put before account-unique names."""
        return f"{PROJECT}-{self.stack}-"

    @property
    def is_prod(self) -> bool:
        """True for production stacks."""
        return self.environment == "prod"


def _field_name(key: Key) -> str:
    """camelCase config key → snake_case StackConfig field."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key.name).lower()


def _prod_problems(values: Mapping[str, Any], raw: Mapping[str, str]) -> list[str]:
    """What a prod stack must have: HTTPS for the API and someone who receives the alarms.

    The certificate must live in the stack's region: ACM certificates are regional, and a load
    balancer uses one of its own region (https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html).
    """
    problems: list[str] = []
    certificate = values.get("certificate_arn")
    region = values.get("region")
    if values.get("environment") == "prod":
        if certificate == "":
            problems.append(
                f"{PROJECT}:certificateArn: required on a prod stack (the API serves HTTPS only: bearer "
                "tokens must not cross the internet in clear text); request or import a certificate "
                "for the API's domain in AWS Certificate Manager in this region, then "
                f"`pulumi config set {PROJECT}:certificateArn "
                "arn:aws:acm:<region>:<account>:certificate/<id>`"
            )
        if values.get("alert_email") == "":
            problems.append(
                f"{PROJECT}:alertEmail: required on a prod stack (every alarm notifies the ops-alerts "
                "topic, which must reach a person); "
                f"`pulumi config set {PROJECT}:alertEmail <address>` and confirm the subscription SNS "
                "emails to it"
            )
    if certificate and region and certificate.split(":")[3] != region:
        problems.append(
            f"{PROJECT}:certificateArn: {raw.get(f'{PROJECT}:certificateArn')!r} is in region "
            f"{certificate.split(':')[3]}, not the stack's region {region}; allowed: an ACM certificate "
            "in the same region as the load balancer"
        )
    return problems


def parse(stack: str, raw: Mapping[str, str]) -> StackConfig:
    """Validate raw config strings (as Pulumi passes them) into a StackConfig or raise ConfigError."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    project_prefix = f"{PROJECT}:"
    for name in sorted(raw):
        if name.startswith(project_prefix) and name not in KEYS_BY_NAME:
            known = ", ".join(k.name for k in KEYS if k.namespace == PROJECT)
            problems.append(f"{name}: unknown key (a typo?); the keys this program reads are: {known}")
    raw = {name: value for name, value in raw.items() if value != ""}  # "" is unset (module docstring)
    for key in KEYS:
        given = raw.get(key.full_name)
        if given is None:
            if key.required:
                problems.append(f"{key.full_name}: required but not set; allowed: {key.allowed}")
            values[_field_name(key)] = key.default
            continue
        try:
            value = _PARSERS[key.kind](given)
        except ValueError as exc:
            problems.append(f"{key.full_name}: {given!r} is not valid ({exc}); allowed: {key.allowed}")
            continue
        if not key.check(value):
            problems.append(f"{key.full_name}: {given!r} is not allowed; allowed: {key.allowed}")
            continue
        values[_field_name(key)] = value

    environment = values.get("environment")
    if environment is None and "environment" in values:
        if stack in ENVIRONMENTS:
            values["environment"] = stack
        else:
            problems.append(
                f"{PROJECT}:environment: not set and stack name '{stack}' is not one of "
                f"{', '.join(ENVIRONMENTS)}; set it explicitly"
            )
    if "api_docs" in values and values["api_docs"] is None:
        values["api_docs"] = values.get("environment") != "prod"
    if values.get("environment") == "prod":
        for key_name, field_name in (
            ("logRetentionDays", "log_retention_days"),
            ("flowLogRetentionDays", "flow_log_retention_days"),
        ):
            if raw.get(f"{PROJECT}:{key_name}") is None and field_name in values:
                values[field_name] = PROD_MIN_LOG_RETENTION_DAYS  # prod's default: a year
            days = values.get(field_name)
            if isinstance(days, int) and days < PROD_MIN_LOG_RETENTION_DAYS:
                problems.append(
                    f"{PROJECT}:{key_name}: {days} is not allowed on a prod stack; allowed: "
                    f"{PROD_MIN_LOG_RETENTION_DAYS} or more (a payment's audit trail must outlive a "
                    f"dispute or a chargeback: "
                    f"{', '.join(str(d) for d in LOG_RETENTION_DAYS if d >= PROD_MIN_LOG_RETENTION_DAYS)})"
                )
    if values.get("environment") == "prod" and values.get("deletion_protection") is False:
        given = raw.get(f"{PROJECT}:deletionProtection", "(unset, default false)")
        problems.append(
            f"{PROJECT}:deletionProtection: {given!r} is not allowed on a prod stack; "
            "allowed: true (production data must be protected from deletion)"
        )
    problems += _prod_problems(values, raw)
    if values.get("retry_base_delay_seconds", 0) > values.get("retry_max_delay_seconds", 900):
        problems.append(
            f"{PROJECT}:retryBaseDelaySeconds: {values['retry_base_delay_seconds']} is above "
            f"retryMaxDelaySeconds ({values['retry_max_delay_seconds']}); allowed: at most the maximum delay"
        )
    if problems:
        raise ConfigError(stack, problems)
    values["interface_endpoints"] = tuple(values["interface_endpoints"])
    return StackConfig(stack=stack, **values)


def current_raw_config() -> dict[str, str]:
    """Every key this program reads, as the running program's `pulumi.Config` has it (strings)."""
    import pulumi

    found: dict[str, str] = {}
    for key in KEYS:
        value = pulumi.Config(key.namespace).get(key.name)
        if value is not None:
            found[key.full_name] = value
    return found


def load() -> StackConfig:
    """The running program's validated config. Raises ConfigError before any resource exists."""
    import pulumi

    return parse(pulumi.get_stack(), current_raw_config())


_SCHEMA_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "list of strings": "array"}
"""Our kinds as Pulumi's project config types (it has no float: a `number` key is declared untyped)."""


def project_config_schema() -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: this project's keys with type, description and default.

    Required keys have no default (the CLI then refuses a stack without them); keys whose default
    depends on other keys are untyped with default "" (read as unset by `parse`).
    """
    schema: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        if key.namespace != PROJECT:
            continue  # Pulumi lets a project give other namespaces' keys a value only, no schema
        entry: dict[str, Any] = {}
        depends = key.default is None or bool(key.default_text)
        if not depends and key.kind in _SCHEMA_TYPES:
            entry["type"] = _SCHEMA_TYPES[key.kind]
            if key.kind == "list of strings":
                entry["items"] = {"type": "string"}
        entry["description"] = f"{key.doc} Allowed: {key.allowed}."
        if depends:
            entry["default"] = ""
        elif not key.required:
            entry["default"] = key.default
        schema[key.name] = entry
    return schema


def markdown_table() -> str:
    """The README's table of config keys, generated from KEYS."""
    rows = ["| key | type | default | meaning | allowed |", "|---|---|---|---|---|"]
    for key in KEYS:
        if key.default_text:
            default = key.default_text
        else:
            default = (
                "(required)" if key.required else ("(stack name)" if key.default is None else key.default)
            )
        if isinstance(default, bool):
            default = str(default).lower()
        elif default == "":
            default = "(empty)"
        elif isinstance(default, list):
            default = json.dumps(default)
        rows.append(f"| `{key.full_name}` | {key.kind} | `{default}` | {key.doc} | {key.allowed} |")
    return "\n".join(rows)
