"""Each rule fails on a hand-made bad resource (message names it and the fix) and passes on a good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policies.engine import evaluate, summary, unused_waivers, waiver_for
from policies.rules import RULES, UNSCOPABLE_ACTIONS, rules_by_id
from policies.view import ResourceView
from tests.policies.builders import (
    CMK_ARN,
    arn,
    dlq_alarm,
    document,
    function,
    log_group,
    only,
    queue,
    queue_url,
    secure_queue_with_dlq,
    tls_deny,
    view,
)

# rule id → (resources, name of the bad resource, text its message must contain)
BAD: dict[str, list[tuple[list[ResourceView], str, str]]] = {}
# rule id → (resources, name of a resource that must pass)
GOOD: dict[str, list[tuple[list[ResourceView], str]]] = {}


def bad(rule_id: str, resources: list[ResourceView], name: str, expected: str) -> None:
    BAD.setdefault(rule_id, []).append((resources, name, expected))


def good(rule_id: str, resources: list[ResourceView], name: str) -> None:
    GOOD.setdefault(rule_id, []).append((resources, name))


# --- SQS / SNS -------------------------------------------------------------------------------

pair = secure_queue_with_dlq("work")
good("sqs-dead-letter-queue", pair, "work")
good("sqs-dead-letter-queue", pair, "work-dlq")  # is a DLQ itself
bad("sqs-dead-letter-queue", [queue("lonely", kmsMasterKeyId=CMK_ARN)], "lonely", "no redrive policy")
short_dlq = [
    queue(
        "src", messageRetentionSeconds=1_209_600, redrivePolicy={"deadLetterTargetArn": arn("sqs", "src-dlq")}
    ),
    queue("src-dlq"),
]
bad("sqs-dead-letter-queue", short_dlq, "src", "its DLQ src-dlq keeps messages 345600 s")
bad("sqs-dead-letter-queue", short_dlq, "src", "no maxReceiveCount")
separate_redrive = [
    queue("sep"),
    queue("sep-dlq", messageRetentionSeconds=1_209_600),
    view(
        "aws:sqs/redrivePolicy:RedrivePolicy",
        "sep-redrive",
        {
            "queueUrl": queue_url("sep"),
            "redrivePolicy": json.dumps({"deadLetterTargetArn": arn("sqs", "sep-dlq"), "maxReceiveCount": 5}),
        },
    ),
]
good("sqs-dead-letter-queue", separate_redrive, "sep")
good("sqs-dead-letter-queue", separate_redrive, "sep-dlq")
schedule_dlq = [
    queue("schedule-dlq"),
    view(
        "aws:cloudwatch/eventTarget:EventTarget",
        "nightly-target",
        {
            "rule": "nightly",
            "arn": arn("lambda", "function:nightly"),
            "deadLetterConfig": {"arn": arn("sqs", "schedule-dlq")},
        },
    ),
]
good("sqs-dead-letter-queue", schedule_dlq, "schedule-dlq")

good("sqs-cmk-encryption", [queue("q", kmsMasterKeyId=CMK_ARN)], "q")
bad("sqs-cmk-encryption", [queue("plain")], "plain", "not encrypted with a customer-managed KMS key")
bad("sqs-cmk-encryption", [queue("sse", sqsManagedSseEnabled=True)], "sse", "sqsManagedSseEnabled")
bad("sqs-cmk-encryption", [queue("aws-key", kmsMasterKeyId="alias/aws/sqs")], "aws-key", "AWS-managed key")
good("sns-cmk-encryption", [view("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": CMK_ARN})], "t")
bad("sns-cmk-encryption", [view("aws:sns/topic:Topic", "t", {})], "t", "kms_master_key_id")
bad(
    "sns-cmk-encryption",
    [view("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": "alias/aws/sns"})],
    "t",
    "AWS-managed key alias/aws/sns",
)

good("sqs-tls-only", pair, "work")
good("sqs-tls-only", [queue("inline", policy=document(tls_deny("sqs", arn("sqs", "inline"))))], "inline")
bad("sqs-tls-only", [queue("open")], "open", "no queue policy")
allow_only = document({"Effect": "Allow", "Principal": {"AWS": arn("iam", "root")}, "Action": "sqs:*"})
bad("sqs-tls-only", [queue("weak", policy=allow_only)], "weak", "no Deny of sqs:*")
topic_arn = arn("sns", "events")
topic_with_policy = [
    view("aws:sns/topic:Topic", "events", {"kmsMasterKeyId": CMK_ARN}, arn=topic_arn),
    view(
        "aws:sns/topicPolicy:TopicPolicy",
        "events-policy",
        {"arn": topic_arn, "policy": document(tls_deny("sns", topic_arn))},
    ),
]
good("sns-tls-only", topic_with_policy, "events")
bad("sns-tls-only", [view("aws:sns/topic:Topic", "bare", {})], "bare", "no Deny of sns:*")

good("sqs-dead-letter-queue-alarm", pair, "work-dlq")
bad(
    "sqs-dead-letter-queue-alarm",
    [r for r in pair if r.type != "aws:cloudwatch/metricAlarm:MetricAlarm"],
    "work-dlq",
    "dimensions={'QueueName': 'work-dlq'}",
)
bad(
    "sqs-dead-letter-queue-alarm",
    [*pair[:-1], dlq_alarm("mute", "work-dlq", actions=())],
    "work-dlq",
    "alarm mute watches it but has no enabled alarm_actions",
)
math_alarm = view(
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "math",
    {
        "alarmActions": [arn("sns", "ops")],
        "metricQueries": [
            {
                "id": "m1",
                "metric": {
                    "namespace": "AWS/SQS",
                    "metricName": "ApproximateNumberOfMessagesVisible",
                    "dimensions": {"QueueName": "work-dlq"},
                },
            }
        ],
    },
)
good("sqs-dead-letter-queue-alarm", [*pair[:-1], math_alarm], "work-dlq")

public = document({"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"})
bad(
    "resource-policy-not-public",
    [queue("pub", policy=public)],
    "pub",
    "statement Everyone allows Principal *",
)
confined = document(
    {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    },
    {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    },
)
good(
    "resource-policy-not-public", [view("aws:sqs/queuePolicy:QueuePolicy", "qp", {"policy": confined})], "qp"
)

# --- KMS -------------------------------------------------------------------------------------

good("kms-key-rotation", [view("aws:kms/key:Key", "k", {"enableKeyRotation": True})], "k")
bad("kms-key-rotation", [view("aws:kms/key:Key", "k", {})], "k", "enable_key_rotation=True")

# --- Lambda ----------------------------------------------------------------------------------

worker = function("worker", timeout=30)
mapping_inputs = {
    "eventSourceArn": arn("sqs", "work"),
    "functionName": worker.state["arn"],
    "functionResponseTypes": ["ReportBatchItemFailures"],
    "batchSize": 10,
}
esm = view("aws:lambda/eventSourceMapping:EventSourceMapping", "work-esm", mapping_inputs)
good("sqs-event-source-batch-failures", [esm], "work-esm")
bad(
    "sqs-event-source-batch-failures",
    [
        view(
            "aws:lambda/eventSourceMapping:EventSourceMapping",
            "m",
            {**mapping_inputs, "functionResponseTypes": []},
        )
    ],
    "m",
    "function_response_types=['ReportBatchItemFailures']",
)
good("sqs-visibility-timeout", [*pair, worker, esm], "work-esm")
by_name = view(
    "aws:lambda/eventSourceMapping:EventSourceMapping",
    "by-name",
    {**mapping_inputs, "functionName": "worker"},
)
good("sqs-visibility-timeout", [*pair, worker, by_name], "by-name")
slow = function("worker", timeout=60)
bad(
    "sqs-visibility-timeout",
    [*pair, slow, esm],
    "work-esm",
    "queue work has visibilityTimeoutSeconds=180, below 6 x the timeout of function worker (60 s)",
)
bad(
    "sqs-visibility-timeout",
    [worker, esm],
    "work-esm",
    f"queue {arn('sqs', 'work')} is not declared in this stack",
)

good("lambda-settings", [function("f")], "f")
good("lambda-settings", [function("img", packageType="Image", runtime=None)], "img")
bad("lambda-settings", [function("f", timeout=None)], "f", "timeout is not set")
bad("lambda-settings", [function("f", memorySize=None)], "f", "memory_size is not set")
bad("lambda-settings", [function("f", runtime="python3.9")], "f", "runtime is 'python3.9'")

good("lambda-log-group", [function("f"), log_group("/aws/lambda/f")], "f")
good(
    "lambda-log-group",
    [function("g", loggingConfig={"logGroup": "/app/g", "logFormat": "JSON"}), log_group("/app/g")],
    "g",
)
bad("lambda-log-group", [function("f")], "f", "no log group named /aws/lambda/f is declared")
bad(
    "lambda-log-group",
    [function("f"), log_group("/aws/lambda/f", retentionInDays=None)],
    "f",
    "its log group aws-lambda-f never expires",
)

good("logs-retention", [log_group("/x")], "x")
bad("logs-retention", [log_group("/x", retentionInDays=None)], "x", "retention_in_days is not set")
good("logs-kms", [log_group("/x")], "x")
bad("logs-kms", [log_group("/x", kmsKeyId=None)], "x", "kms_key_id is not set")

# --- IAM -------------------------------------------------------------------------------------


def role_policy(name: str, *statements: dict[str, Any]) -> ResourceView:
    return view("aws:iam/rolePolicy:RolePolicy", name, {"role": "r", "policy": document(*statements)})


table_arn = arn("dynamodb", "table/payments")
good(
    "iam-least-privilege",
    [
        role_policy(
            "scoped",
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": table_arn},
            {
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "cloudwatch:PutMetricData"],
                "Resource": "*",
            },
            {"Effect": "Deny", "Action": "*", "Resource": "*"},
        )
    ],
    "scoped",
)
bad(
    "iam-least-privilege",
    [role_policy("svc", {"Sid": "All", "Effect": "Allow", "Action": "sqs:*", "Resource": arn("sqs", "q")})],
    "svc",
    "statement All allows sqs:*",
)
bad(
    "iam-least-privilege",
    [role_policy("star", {"Effect": "Allow", "Action": "*", "Resource": "*"})],
    "star",
    "allows *; fix: list only the actions",
)
bad(
    "iam-least-privilege",
    [
        role_policy(
            "any",
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "xray:PutTraceSegments"], "Resource": "*"},
        )
    ],
    "any",
    "allows dynamodb:PutItem on Resource '*' although they can be scoped",
)
bad(
    "iam-least-privilege",
    [role_policy("not", {"Effect": "Allow", "NotAction": "iam:*", "Resource": table_arn})],
    "not",
    "allows NotAction",
)
bad(
    "iam-least-privilege",
    [
        view(
            "aws:iam/role:Role",
            "inline",
            {
                "inlinePolicies": [
                    {
                        "name": "send",
                        "policy": document({"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}),
                    }
                ]
            },
        )
    ],
    "inline",
    "inline policy send statement (no Sid) allows sns:Publish on Resource '*'",
)
bad(
    "iam-least-privilege",
    [view("aws:iam/policy:Policy", "broken", {"policy": "{not json"})],
    "broken",
    "policy is not valid JSON",
)
good(
    "iam-no-broad-managed-policies",
    [
        view(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "basic",
            {"role": "r", "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        )
    ],
    "basic",
)
bad(
    "iam-no-broad-managed-policies",
    [
        view(
            "aws:iam/role:Role",
            "admin",
            {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
        )
    ],
    "admin",
    "attaches arn:aws:iam::aws:policy/AdministratorAccess",
)
bad(
    "iam-no-broad-managed-policies",
    [
        view(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "sqs-full",
            {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonSQSFullAccess"},
        )
    ],
    "sqs-full",
    "AmazonSQSFullAccess",
)

# --- DynamoDB --------------------------------------------------------------------------------

table_ok = {
    "pointInTimeRecovery": {"enabled": True},
    "serverSideEncryption": {"enabled": True, "kmsKeyArn": CMK_ARN},
}
good("dynamodb-pitr", [view("aws:dynamodb/table:Table", "t", table_ok)], "t")
bad(
    "dynamodb-pitr",
    [view("aws:dynamodb/table:Table", "t", {**table_ok, "pointInTimeRecovery": None})],
    "t",
    "point-in-time recovery is off",
)
good("dynamodb-cmk-encryption", [view("aws:dynamodb/table:Table", "t", table_ok)], "t")
bad(
    "dynamodb-cmk-encryption",
    [view("aws:dynamodb/table:Table", "t", {**table_ok, "serverSideEncryption": {"enabled": True}})],
    "t",
    "kms_key_arn",
)

# --- S3 --------------------------------------------------------------------------------------

bucket_id = "logs-bucket-id"
bucket = view("aws:s3/bucket:Bucket", "logs", {}, id=bucket_id, bucket=bucket_id)
bucket_parts = [
    bucket,
    view(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "logs-pab",
        {
            "bucket": bucket_id,
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
    ),
    view(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "logs-sse",
        {"bucket": bucket_id, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
    ),
    view(
        "aws:s3/bucketVersioning:BucketVersioning",
        "logs-versioning",
        {"bucket": bucket_id, "versioningConfiguration": {"status": "Enabled"}},
    ),
    view(
        "aws:s3/bucketPolicy:BucketPolicy",
        "logs-policy",
        {"bucket": bucket_id, "policy": document(tls_deny("s3", "arn:aws:s3:::logs-bucket-id/*"))},
    ),
]
for rule_id, expected in (
    ("s3-public-access-block", "no aws.s3.BucketPublicAccessBlock"),
    ("s3-encryption", "no default encryption configuration"),
    ("s3-versioning", "versioning is off"),
    ("s3-tls-only", "no bucket policy denies s3:*"),
):
    good(rule_id, bucket_parts, "logs")
    bad(rule_id, [bucket], "logs", expected)
half_block = view(
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "half",
    {"bucket": bucket_id, "blockPublicAcls": True, "ignorePublicAcls": True},
)
bad(
    "s3-public-access-block",
    [bucket, half_block],
    "logs",
    "leaves blockPublicPolicy, restrictPublicBuckets off",
)

# --- security groups, ECR, ALB ---------------------------------------------------------------


def sg(name: str, *ingress: dict[str, Any], **inputs: Any) -> ResourceView:
    return view(
        "aws:ec2/securityGroup:SecurityGroup", name, {"ingress": list(ingress), **inputs}, id=f"sg-{name}"
    )


https_anywhere = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}
lb_sg = sg(
    "alb-sg", https_anywhere, {"protocol": "tcp", "fromPort": 80, "toPort": 80, "ipv6CidrBlocks": ["::/0"]}
)
alb = view(
    "aws:lb/loadBalancer:LoadBalancer",
    "alb",
    {"securityGroups": ["sg-alb-sg"], "dropInvalidHeaderFields": True},
)
good("ec2-no-open-ingress", [lb_sg, alb], "alb-sg")
good(
    "ec2-no-open-ingress",
    [sg("tagged", https_anywhere, tags={"exposure": "internet-facing-load-balancer"})],
    "tagged",
)
good("ec2-no-open-ingress", [sg("internal", {**https_anywhere, "cidrBlocks": ["10.20.0.0/16"]})], "internal")
bad(
    "ec2-no-open-ingress",
    [sg("app-sg", https_anywhere)],
    "app-sg",
    "ingress #0 allows tcp port 443 from 0.0.0.0/0",
)
bad(
    "ec2-no-open-ingress",
    [sg("alb-sg", {**https_anywhere, "fromPort": 8080, "toPort": 8080}), alb],
    "alb-sg",
    "open only tcp 80 and 443",
)
bad(
    "ec2-no-open-ingress",
    [
        view(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "ssh",
            {
                "type": "ingress",
                "securityGroupId": "sg-x",
                "protocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        )
    ],
    "ssh",
    "the rule allows tcp port 22 from 0.0.0.0/0",
)
bad(
    "ec2-no-open-ingress",
    [
        view(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "all",
            {"securityGroupId": "sg-x", "ipProtocol": "-1", "cidrIpv6": "::/0"},
        )
    ],
    "all",
    "the rule allows all traffic from ::/0",
)
good(
    "ec2-no-open-ingress",
    [
        view(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "out",
            {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]},
        )
    ],
    "out",
)

repo_ok = {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE"}
good("ecr-scan-on-push", [view("aws:ecr/repository:Repository", "r", repo_ok)], "r")
bad("ecr-scan-on-push", [view("aws:ecr/repository:Repository", "r", {})], "r", "scan_on_push")
good("ecr-immutable-tags", [view("aws:ecr/repository:Repository", "r", repo_ok)], "r")
bad(
    "ecr-immutable-tags",
    [view("aws:ecr/repository:Repository", "r", {})],
    "r",
    "image_tag_mutability='IMMUTABLE'",
)
good("alb-drop-invalid-headers", [alb], "alb")
bad(
    "alb-drop-invalid-headers",
    [view("aws:lb/loadBalancer:LoadBalancer", "lb", {})],
    "lb",
    "drop_invalid_header_fields=True",
)


# --- outside rule sets (checkov) -------------------------------------------------------------

good("logs-retention-one-year", [log_group("audit", retentionInDays=365)], "audit")
bad(
    "logs-retention-one-year",
    [log_group("short", retentionInDays=90)],
    "short",
    "retention_in_days is 90, under a year",
)
good("lambda-reserved-concurrency", [function("payer", reservedConcurrentExecutions=10)], "payer")
bad("lambda-reserved-concurrency", [function("payer")], "payer", "reserved_concurrent_executions is not set")
bad(
    "lambda-reserved-concurrency",
    [function("payer", reservedConcurrentExecutions=-1)],
    "payer",
    "reserved_concurrent_executions is not set",
)
good(
    "lambda-environment-cmk",
    [function("env", environment={"variables": {"A": "1"}}, kmsKeyArn=CMK_ARN)],
    "env",
)
good("lambda-environment-cmk", [function("bare")], "bare")  # nothing to encrypt
bad(
    "lambda-environment-cmk",
    [function("env", environment={"variables": {"A": "1"}})],
    "env",
    "AWS-managed key aws/lambda",
)
good("lambda-tracing", [function("traced", tracingConfig={"mode": "Active"})], "traced")
bad("lambda-tracing", [function("dark", tracingConfig={"mode": "PassThrough"})], "dark", "tracing is off")
bad("lambda-tracing", [function("dark")], "dark", "tracing is off")
nightly_target = view(
    "aws:cloudwatch/eventTarget:EventTarget",
    "nightly-target",
    {"rule": "nightly", "arn": arn("lambda", "function:nightly")},
)
good(
    "lambda-async-dlq",
    [function("nightly", deadLetterConfig={"targetArn": arn("sqs", "nightly-dlq")}), nightly_target],
    "nightly",
)
good("lambda-async-dlq", [function("worker")], "worker")  # only a queue mapping or a caller invokes it
bad("lambda-async-dlq", [function("nightly"), nightly_target], "nightly", "invoked asynchronously")
sns_permission = view(
    "aws:lambda/permission:Permission",
    "hook-invoke",
    {"function": "hook", "principal": "sns.amazonaws.com", "action": "lambda:InvokeFunction"},
)
bad("lambda-async-dlq", [function("hook"), sns_permission], "hook", "hook-invoke")
good(
    "lambda-async-dlq",
    [
        function("hook"),
        sns_permission,
        view(
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            "hook-async",
            {"functionName": "hook", "destinationConfig": {"onFailure": {"destination": arn("sqs", "q")}}},
        ),
    ],
    "hook",
)
good("lambda-in-vpc", [function("inside", vpcConfig={"subnetIds": ["subnet-1"]})], "inside")
bad("lambda-in-vpc", [function("outside")], "outside", "runs outside a VPC")
good("lambda-code-signing", [function("signed", codeSigningConfigArn=arn("lambda", "csc"))], "signed")
bad("lambda-code-signing", [function("unsigned")], "unsigned", "no code_signing_config_arn")
CODE_SIGNING_CONFIG = "aws:lambda/codeSigningConfig:CodeSigningConfig"
PROFILE_VERSION = "arn:aws:signer:ap-northeast-2:123456789012:/signing-profiles/p/v1"
good(
    "lambda-code-signing-enforced",
    [
        view(
            CODE_SIGNING_CONFIG,
            "enforcing",
            {
                "allowedPublishers": {"signingProfileVersionArns": [PROFILE_VERSION]},
                "policies": {"untrustedArtifactOnDeployment": "Enforce"},
            },
        )
    ],
    "enforcing",
)
bad(
    "lambda-code-signing-enforced",
    [
        view(
            CODE_SIGNING_CONFIG,
            "warning",
            {"allowedPublishers": {"signingProfileVersionArns": [PROFILE_VERSION]}},
        )
    ],
    "warning",
    "untrusted_artifact_on_deployment is 'Warn'",
)
bad(
    "lambda-code-signing-enforced",
    [
        view(
            CODE_SIGNING_CONFIG,
            "nobody",
            {
                "allowedPublishers": {"signingProfileVersionArns": []},
                "policies": {"untrustedArtifactOnDeployment": "Enforce"},
            },
        )
    ],
    "nobody",
    "trusts no signing profile",
)
logged_bucket = [
    view("aws:s3/bucketV2:BucketV2", "data", {}),
    view(
        "aws:s3/bucketLoggingV2:BucketLoggingV2", "data-logging", {"bucket": "data", "targetBucket": "logs"}
    ),
    view(
        "aws:s3/bucketNotification:BucketNotification", "data-events", {"bucket": "data", "eventbridge": True}
    ),
    view(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "data-replication",
        {"bucket": "data", "role": arn("iam", "r"), "rules": []},
    ),
]
plain_bucket = [view("aws:s3/bucketV2:BucketV2", "data", {})]
for rule_id, expected in (
    ("s3-access-logging", "no server access logging"),
    ("s3-event-notifications", "no event notifications"),
    ("s3-replication", "no cross-region replication"),
):
    good(rule_id, logged_bucket, "data")
    bad(rule_id, plain_bucket, "data", expected)
good(
    "alb-listener-tls",
    [
        view(
            "aws:lb/listener:Listener",
            "https",
            {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"},
        )
    ],
    "https",
)
good(
    "alb-listener-tls",
    [
        view(
            "aws:lb/listener:Listener",
            "http",
            {"protocol": "HTTP", "defaultActions": [{"type": "redirect", "redirect": {"protocol": "HTTPS"}}]},
        )
    ],
    "http",
)
bad(
    "alb-listener-tls",
    [view("aws:lb/listener:Listener", "http", {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]})],
    "http",
    "serves HTTP without redirecting to HTTPS",
)
bad(
    "alb-listener-tls",
    [
        view(
            "aws:lb/listener:Listener", "old", {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-2016-08"}
        )
    ],
    "old",
    "allows TLS below 1.2",
)
good("alb-target-group-tls", [view("aws:lb/targetGroup:TargetGroup", "tg", {"protocol": "HTTPS"})], "tg")
bad(
    "alb-target-group-tls",
    [view("aws:lb/targetGroup:TargetGroup", "tg", {"protocol": "HTTP"})],
    "tg",
    "forwards HTTP to its targets",
)
hardened_template = view(
    "aws:ec2/launchTemplate:LaunchTemplate",
    "nat",
    {
        "metadataOptions": {"httpTokens": "required"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}],
    },
)
good("ec2-imdsv2", [hardened_template], "nat")
good(
    "ec2-imdsv2",
    [view("aws:ec2/instance:Instance", "box", {"launchTemplate": {"id": "nat-id"}}), hardened_template],
    "box",
)
bad(
    "ec2-imdsv2",
    [view("aws:ec2/instance:Instance", "box", {"metadataOptions": {"httpTokens": "optional"}})],
    "box",
    "without a session token (IMDSv1)",
)
good("ec2-ebs-encrypted", [hardened_template], "nat")
bad(
    "ec2-ebs-encrypted",
    [
        view(
            "aws:ec2/launchTemplate:LaunchTemplate",
            "plain",
            {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 8}}]},
        )
    ],
    "plain",
    "block device mapping #0 is not encrypted",
)


# --- the tests -------------------------------------------------------------------------------


def _cases(table: dict[str, list[Any]]) -> list[Any]:
    return [
        pytest.param(rule_id, *case, id=f"{rule_id}-{i}")
        for rule_id, cases in table.items()
        for i, case in enumerate(cases)
    ]


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    ids = {r.id for r in RULES}
    assert ids - set(BAD) == set(), "rules without a failing case"
    assert ids - set(GOOD) == set(), "rules without a passing case"
    assert set(BAD) | set(GOOD) <= ids, "cases for unknown rules"


@pytest.mark.parametrize(("rule_id", "resources", "name", "expected"), _cases(BAD))
def test_rule_fails_on_bad_resource(
    rule_id: str, resources: list[ResourceView], name: str, expected: str
) -> None:
    finding = only(rule_id, resources)[name]
    assert finding.status == "failed"
    label = next(r.label for r in resources if r.name == name)
    assert finding.message.startswith(f"{label}: "), finding.message
    assert expected in finding.message, finding.message
    assert "fix:" in finding.message


@pytest.mark.parametrize(("rule_id", "resources", "name"), _cases(GOOD))
def test_rule_passes_on_good_resource(rule_id: str, resources: list[ResourceView], name: str) -> None:
    finding = only(rule_id, resources)[name]
    assert (finding.status, finding.message) == ("passed", "")


def test_dlq_alarm_rule_only_looks_at_dead_letter_queues() -> None:
    assert set(only("sqs-dead-letter-queue-alarm", pair)) == {"work-dlq"}


def test_rotation_rule_skips_asymmetric_keys() -> None:
    signing = view(
        "aws:kms/key:Key", "signing", {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"}
    )
    assert only("kms-key-rotation", [signing]) == {}


def test_mapping_rules_skip_non_sqs_sources() -> None:
    stream = view(
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "stream",
        {"eventSourceArn": arn("dynamodb", "table/t/stream/1"), "functionName": "worker"},
    )
    assert only("sqs-event-source-batch-failures", [stream]) == {}
    assert only("sqs-visibility-timeout", [stream, worker]) == {}


def test_network_load_balancer_needs_no_header_rule() -> None:
    nlb = view("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network"})
    assert only("alb-drop-invalid-headers", [nlb]) == {}


def test_unscopable_actions_are_all_lower_case_service_actions() -> None:
    assert all(a == a.lower() and ":" in a and "*" not in a for a in UNSCOPABLE_ACTIONS)


def test_waiver_turns_failure_into_waived_with_its_reason() -> None:
    lonely = [queue("legacy-inbox", kmsMasterKeyId=CMK_ARN)]
    waivers = {("sqs-dead-letter-queue", "legacy-*"): "drained by a person daily; see runbook 7"}
    findings = evaluate(lonely, rules=[rules_by_id()["sqs-dead-letter-queue"]], waivers=waivers)
    assert [(f.status, f.waiver) for f in findings] == [
        ("waived", "drained by a person daily; see runbook 7")
    ]
    assert "no redrive policy" in findings[0].message
    assert summary(findings) == {"passed": 0, "failed": 0, "waived": 1}
    assert unused_waivers(findings, waivers) == []
    assert unused_waivers([], waivers) == [("sqs-dead-letter-queue", "legacy-*")]
    assert waiver_for("sqs-dead-letter-queue", "payments", waivers) is None


def test_evaluate_reports_one_finding_per_rule_and_resource() -> None:
    findings = evaluate(pair, waivers={})
    keys = [(f.rule, f.resource_name) for f in findings]
    assert len(keys) == len(set(keys))
    assert summary(findings)["failed"] == 0
    assert ("sqs-cmk-encryption", "work") in keys and ("sqs-dead-letter-queue-alarm", "work-dlq") in keys


def test_readme_lists_every_rule() -> None:
    readme = (Path(__file__).resolve().parents[2] / "policies" / "README.md").read_text()
    assert [r.id for r in RULES if f"`{r.id}`" not in readme] == []


def test_a_stack_scoped_waiver_applies_only_on_its_stacks() -> None:
    waivers = {("logs-retention-one-year", "dev::*"): "development logs are for this week's debugging"}
    rules = [rules_by_id()["logs-retention-one-year"]]
    on_dev = ResourceView(
        "aws:cloudwatch/logGroup:LogGroup",
        "app-logs",
        "urn:pulumi:dev::crowdfunding::aws:cloudwatch/logGroup:LogGroup::app-logs",
        {"retentionInDays": 14},
        {},
    )
    on_prod = ResourceView(
        on_dev.type, "app-logs", on_dev.urn.replace(":dev::", ":prod::"), on_dev.inputs, {}
    )
    assert [f.status for f in evaluate([on_dev], rules=rules, waivers=waivers)] == ["waived"]
    assert [f.status for f in evaluate([on_prod], rules=rules, waivers=waivers)] == ["failed"]
    assert unused_waivers(evaluate([on_prod], rules=rules, waivers=waivers), waivers) == [
        ("logs-retention-one-year", "dev::*")
    ]
