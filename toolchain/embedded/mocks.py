"""A mock layer that deploys the Pulumi program onto the AWS emulator.

`EmulatorMocks.new_resource` receives every resource the real program declares, with its
resolved inputs. Resources the running system needs (tables, topics, queues, subscriptions,
the Cognito pool and client, the SES identity, dashboards and alarms, KMS keys) are created on
the emulator and the emulator's real ids, ARNs and URLs are returned, so every reference in
the program resolves to something that exists. Lambda functions, their event source mappings,
schedules and the ECS task definition are recorded in a `LocalDeployment` for the local
runtime to drive. Everything else (VPC, load balancer, IAM, pipeline…) has no local meaning:
it is recorded and listed, not faked. The mapping is by resource *type*; there is no list of
this product's queues, topics or functions anywhere in this package.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awsblocks.testing import MOCK_ACCOUNT_ID, OfflineMocks
from pulumi.runtime import mocks as pulumi_mocks

from toolchain.embedded.emulator import emulator_session


@dataclass
class LocalFunction:
    """A Lambda function as declared: what the local runtime needs to run it."""

    name: str
    arn: str
    handler: str
    runtime: str
    archive: str
    environment: dict[str, str]
    timeout: int
    memory: int
    role: str = ""
    """The execution role's ARN (the function runs with credentials of an assumed session of it)."""
    reserved_concurrency: int | None = None
    dead_letter_arn: str | None = None
    """Where Lambda sends an asynchronous event whose retries all failed (an SQS queue or SNS topic)."""


@dataclass
class LocalRole:
    """An IAM role as created on the emulator."""

    name: str
    arn: str
    assume_role_policy: str
    """The trust policy: who may assume the role (a service principal for Lambda and ECS)."""


@dataclass
class LocalMapping:
    """An SQS event source mapping as declared."""

    queue_arn: str
    function: str
    batch_size: int
    batching_window: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None


@dataclass
class LocalSchedule:
    """An EventBridge schedule rule and the function it targets."""

    rule: str
    expression: str
    function_arn: str | None = None
    input: str | None = None


@dataclass
class LocalDeployment:
    """What the program declared, as the emulator and the local runtime see it."""

    region: str
    created: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, logical name, physical id) of every resource created on the emulator."""
    recorded: list[tuple[str, str]] = field(default_factory=list)
    """(type, logical name) of resources with no local meaning."""
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    mappings: list[LocalMapping] = field(default_factory=list)
    schedules: dict[str, LocalSchedule] = field(default_factory=dict)
    containers: list[dict[str, Any]] = field(default_factory=list)
    queues: dict[str, str] = field(default_factory=dict)
    """queue ARN → queue URL."""
    user_pools: dict[str, str] = field(default_factory=dict)
    """user pool id → its logical name."""
    user_pool_clients: dict[str, str] = field(default_factory=dict)
    """client id → user pool id."""
    roles: dict[str, LocalRole] = field(default_factory=dict)
    """role ARN → the role."""
    packages: dict[str, str] = field(default_factory=dict)
    """`s3://bucket/key` of an uploaded package, and of each signed copy made of it → the archive
    file it came from: a function deployed from a signed S3 object runs from that archive."""

    def role_named(self, name_or_arn: str) -> LocalRole | None:
        """A role by ARN or name."""
        found = self.roles.get(name_or_arn)
        return found or next((r for r in self.roles.values() if r.name == name_or_arn), None)

    def function_by_arn(self, arn: str) -> LocalFunction | None:
        """The function a schedule target or mapping refers to."""
        return next((f for f in self.functions.values() if f.arn == arn or f.name == arn), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary (written to the run-state file)."""
        return {
            "region": self.region,
            "created": self.created,
            "recorded": self.recorded,
            "functions": {n: vars(f) for n, f in self.functions.items()},
            "mappings": [vars(m) for m in self.mappings],
            "schedules": {n: vars(s) for n, s in self.schedules.items()},
            "queues": self.queues,
            "userPools": self.user_pools,
            "userPoolClients": self.user_pool_clients,
            "roles": {arn: vars(role) for arn, role in self.roles.items()},
            "containers": [
                {k: c.get(k) for k in ("family", "name", "taskRoleArn", "executionRoleArn")}
                for c in self.containers
            ],
        }


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class EmulatorMocks(pulumi_mocks.Mocks):
    """Creates the program's resources on the emulator at `endpoint_url`."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.offline = OfflineMocks(region, MOCK_ACCOUNT_ID)
        self.deployment = LocalDeployment(region=region)
        self._session = emulator_session(region)
        self.deferred: list[Callable[[], Any]] = []
        """Creations nothing running depends on (alarms, dashboards: their outputs are known
        without the emulator): `create_deferred` makes them once the system is ready."""
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        # Client creation (reading a service's model) is slow: make them while the program starts.
        threading.Thread(target=self._warm_clients, daemon=True, name="warm-clients").start()
        self._creators: dict[
            str, Callable[[pulumi_mocks.MockResourceArgs, str], tuple[str, dict[str, Any]]]
        ] = {
            "aws:dynamodb/table:Table": self._table,
            "aws:sns/topic:Topic": self._topic,
            "aws:sqs/queue:Queue": self._queue,
            "aws:sns/topicSubscription:TopicSubscription": self._subscription,
            "aws:sqs/queuePolicy:QueuePolicy": self._queue_policy,
            "aws:sns/topicPolicy:TopicPolicy": self._topic_policy,
            "aws:kms/key:Key": self._kms_key,
            "aws:cognito/userPool:UserPool": self._user_pool,
            "aws:cognito/userPoolClient:UserPoolClient": self._user_pool_client,
            "aws:ses/emailIdentity:EmailIdentity": self._email_identity,
            "aws:sesv2/emailIdentity:EmailIdentity": self._email_identity,
            "aws:cloudwatch/dashboard:Dashboard": self._dashboard,
            "aws:cloudwatch/metricAlarm:MetricAlarm": self._alarm,
            "aws:lambda/function:Function": self._function,
            "aws:lambda/eventSourceMapping:EventSourceMapping": self._mapping,
            "aws:cloudwatch/eventRule:EventRule": self._rule,
            "aws:cloudwatch/eventTarget:EventTarget": self._target,
            "aws:ecs/taskDefinition:TaskDefinition": self._task_definition,
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/policy:Policy": self._policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._role_policy_attachment,
        }

    def client(self, service: str) -> Any:
        """A boto3 client bound to the emulator (one per service: creating one costs milliseconds;
        clients are thread-safe, the session that creates them is not)."""
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                found = self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url)
            return found

    WARM_CLIENTS = ("sqs", "dynamodb", "iam", "sns", "kms", "cognito-idp", "sesv2", "ses", "cloudwatch")

    def _warm_clients(self) -> None:
        for service in self.WARM_CLIENTS:
            with contextlib.suppress(Exception):
                self.client(service)

    def create_deferred(self) -> list[str]:
        """Make the deferred creations now; the errors, if any (one line each)."""
        errors = []
        for create in self.deferred:
            try:
                create()
            except Exception as exc:  # reported, never fatal: nothing running depends on these
                errors.append(f"{type(exc).__name__}: {exc}")
        self.deferred.clear()
        return errors

    # --- the Mocks interface ----------------------------------------------------------------

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return self.offline.call(args)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return self.offline.new_resource(args)
        creator = self._creators.get(args.typ)
        if creator is None:
            if not args.typ.startswith("pulumi:providers:"):
                self.deployment.recorded.append((args.typ, args.name))
            physical_id, state = self.offline.new_resource(args)
            self._remember_package(args.typ, args.inputs, state)
            return physical_id, state
        name = str(args.inputs.get("name") or args.name)
        physical_id, state = creator(args, name)
        self.deployment.created.append((args.typ, args.name, physical_id))
        return physical_id, {**args.inputs, **state}

    def _remember_package(self, typ: str, inputs: dict[str, Any], state: dict[str, Any]) -> None:
        """Follow a package through code signing (the emulator has no Signer: the offline mocks
        answer the job): the upload's archive file, then the signed copy made of that upload."""
        packages = self.deployment.packages
        if typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            path = str(getattr(inputs.get("source"), "path", "") or "")
            if path:
                packages[f"s3://{inputs.get('bucket')}/{inputs.get('key')}"] = path
        elif typ == "aws:signer/signingJob:SigningJob":
            source = (inputs.get("source") or {}).get("s3") or {}
            archive = packages.get(f"s3://{source.get('bucket')}/{source.get('key')}")
            if archive:
                for signed in state.get("signedObjects") or []:
                    for s3 in signed.get("s3s") or []:
                        packages[f"s3://{s3.get('bucket')}/{s3.get('key')}"] = archive

    # --- creators: each returns (physical id, output state) -----------------------------------

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{MOCK_ACCOUNT_ID}:{resource}"

    def _table(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        key_schema = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
        if inputs.get("rangeKey"):
            key_schema.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": key_schema,
            "AttributeDefinitions": [
                {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs.get("attributes", [])
            ],
            "BillingMode": "PAY_PER_REQUEST",
        }
        indexes = []
        for index in inputs.get("globalSecondaryIndexes") or []:
            if index.get("keySchemas"):  # pulumi-aws 7 shape
                schema = [
                    {"AttributeName": k["attributeName"], "KeyType": k["keyType"]}
                    for k in index["keySchemas"]
                ]
            else:
                schema = [{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
                if index.get("rangeKey"):
                    schema.append({"AttributeName": index["rangeKey"], "KeyType": "RANGE"})
            projection: dict[str, Any] = {"ProjectionType": index.get("projectionType", "ALL")}
            if index.get("nonKeyAttributes"):
                projection["NonKeyAttributes"] = index["nonKeyAttributes"]
            indexes.append({"IndexName": index["name"], "KeySchema": schema, "Projection": projection})
        if indexes:
            request["GlobalSecondaryIndexes"] = indexes
        if inputs.get("streamEnabled"):
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": inputs.get("streamViewType", "NEW_AND_OLD_IMAGES"),
            }
        dynamodb = self.client("dynamodb")
        description = dynamodb.create_table(**request)["TableDescription"]
        ttl = inputs.get("ttl") or {}
        if ttl.get("enabled") and ttl.get("attributeName"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
        state = {"name": name, "arn": description["TableArn"], "id": name}
        if description.get("LatestStreamArn"):
            state["streamArn"] = description["LatestStreamArn"]
        return name, state

    def _topic(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        attributes = {}
        if args.inputs.get("kmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(args.inputs["kmsMasterKeyId"])
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        return arn, {"arn": arn, "name": name, "id": arn}

    def _queue(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        attributes: dict[str, str] = {}
        for key, attribute in (
            ("visibilityTimeoutSeconds", "VisibilityTimeout"),
            ("messageRetentionSeconds", "MessageRetentionPeriod"),
            ("delaySeconds", "DelaySeconds"),
            ("receiveWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
            ("maxMessageSize", "MaximumMessageSize"),
            ("kmsMasterKeyId", "KmsMasterKeyId"),
        ):
            if inputs.get(key) is not None:
                attributes[attribute] = _attribute(inputs[key])
        if inputs.get("redrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(_json(inputs["redrivePolicy"]))
        if inputs.get("fifoQueue"):
            attributes["FifoQueue"] = "true"
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.deployment.queues[arn] = url
        return url, {"arn": arn, "url": url, "name": name, "id": url}

    def _subscription(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        attributes: dict[str, str] = {}
        if inputs.get("filterPolicy"):
            attributes["FilterPolicy"] = json.dumps(_json(inputs["filterPolicy"]))
            attributes["FilterPolicyScope"] = str(inputs.get("filterPolicyScope") or "MessageAttributes")
        if inputs.get("rawMessageDelivery"):
            attributes["RawMessageDelivery"] = "true"
        arn = self.client("sns").subscribe(
            TopicArn=inputs["topic"],
            Protocol=inputs["protocol"],
            Endpoint=inputs["endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return arn, {"arn": arn, "id": arn}

    def _queue_policy(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        url = args.inputs["queueUrl"]
        policy = args.inputs["policy"]
        self.client("sqs").set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": policy if isinstance(policy, str) else json.dumps(policy)}
        )
        return url, {"id": url}

    def _topic_policy(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        arn = args.inputs["arn"]
        policy = args.inputs["policy"]
        self.client("sns").set_topic_attributes(
            TopicArn=arn,
            AttributeName="Policy",
            AttributeValue=policy if isinstance(policy, str) else json.dumps(policy),
        )
        return arn, {"id": arn}

    def _kms_key(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        kms = self.client("kms")
        metadata = kms.create_key(Description=str(args.inputs.get("description") or name))["KeyMetadata"]
        if args.inputs.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        return metadata["KeyId"], {
            "arn": metadata["Arn"],
            "keyId": metadata["KeyId"],
            "id": metadata["KeyId"],
        }

    def _user_pool(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        request: dict[str, Any] = {"PoolName": name}
        password = inputs.get("passwordPolicy")
        if password:
            request["Policies"] = {
                "PasswordPolicy": {
                    "MinimumLength": int(password.get("minimumLength", 8)),
                    "RequireUppercase": bool(password.get("requireUppercase", False)),
                    "RequireLowercase": bool(password.get("requireLowercase", False)),
                    "RequireNumbers": bool(password.get("requireNumbers", False)),
                    "RequireSymbols": bool(password.get("requireSymbols", False)),
                }
            }
        if inputs.get("autoVerifiedAttributes"):
            request["AutoVerifiedAttributes"] = list(inputs["autoVerifiedAttributes"])
        if inputs.get("usernameAttributes"):
            request["UsernameAttributes"] = list(inputs["usernameAttributes"])
        pool = self.client("cognito-idp").create_user_pool(**request)["UserPool"]
        self.deployment.user_pools[pool["Id"]] = args.name
        return pool["Id"], {
            "id": pool["Id"],
            "arn": pool["Arn"],
            "name": name,
            "endpoint": f"cognito-idp.{self.region}.amazonaws.com/{pool['Id']}",
        }

    def _user_pool_client(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        request: dict[str, Any] = {
            "UserPoolId": inputs["userPoolId"],
            "ClientName": name,
            "GenerateSecret": bool(inputs.get("generateSecret", False)),
        }
        if inputs.get("explicitAuthFlows"):
            request["ExplicitAuthFlows"] = list(inputs["explicitAuthFlows"])
        client = self.client("cognito-idp").create_user_pool_client(**request)["UserPoolClient"]
        self.deployment.user_pool_clients[client["ClientId"]] = inputs["userPoolId"]
        return client["ClientId"], {"id": client["ClientId"], "name": name}

    def _email_identity(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        email = str(args.inputs.get("email") or args.inputs.get("emailIdentity"))
        self.client("ses").verify_email_identity(EmailAddress=email)
        return email, {"id": email, "arn": self._arn("ses", f"identity/{email}")}

    def _dashboard(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        dashboard = str(args.inputs.get("dashboardName") or name)
        body = args.inputs["dashboardBody"]
        self.deferred.append(
            lambda: self.client("cloudwatch").put_dashboard(
                DashboardName=dashboard, DashboardBody=body if isinstance(body, str) else json.dumps(body)
            )
        )
        arn = f"arn:aws:cloudwatch::{MOCK_ACCOUNT_ID}:dashboard/{dashboard}"
        return dashboard, {"id": dashboard, "dashboardArn": arn}

    def _alarm(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        request: dict[str, Any] = {
            "AlarmName": name,
            "ComparisonOperator": inputs["comparisonOperator"],
            "EvaluationPeriods": int(inputs["evaluationPeriods"]),
            "AlarmActions": list(inputs.get("alarmActions") or []),
            "OKActions": list(inputs.get("okActions") or []),
            "TreatMissingData": str(inputs.get("treatMissingData") or "missing"),
        }
        if inputs.get("threshold") is not None:
            request["Threshold"] = float(inputs["threshold"])
        if inputs.get("metricName"):
            request.update(
                MetricName=inputs["metricName"],
                Namespace=inputs["namespace"],
                Period=int(inputs.get("period", 60)),
                Statistic=inputs.get("statistic", "Sum"),
                Dimensions=[
                    {"Name": k, "Value": str(v)} for k, v in (inputs.get("dimensions") or {}).items()
                ],
            )
        elif inputs.get("metricQueries"):
            request["Metrics"] = [_metric_query(q) for q in inputs["metricQueries"]]
        self.deferred.append(lambda: self.client("cloudwatch").put_metric_alarm(**request))
        return name, {"id": name, "arn": self._arn("cloudwatch", f"alarm:{name}")}

    def _function(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        code = inputs.get("code")
        archive = str(getattr(code, "path", "") or "")
        if not archive and inputs.get("s3Key"):  # deployed from a (signed) S3 object
            archive = self.deployment.packages.get(f"s3://{inputs.get('s3Bucket')}/{inputs['s3Key']}", "")
        variables = (inputs.get("environment") or {}).get("variables") or {}
        arn = self._arn("lambda", f"function:{name}")
        self.deployment.functions[name] = LocalFunction(
            name=name,
            arn=arn,
            handler=str(inputs.get("handler")),
            runtime=str(inputs.get("runtime")),
            archive=archive,
            environment={k: str(v) for k, v in variables.items()},
            timeout=int(inputs.get("timeout") or 3),
            memory=int(inputs.get("memorySize") or 128),
            role=str(inputs.get("role") or ""),
            reserved_concurrency=_reserved(inputs.get("reservedConcurrentExecutions")),
            dead_letter_arn=(inputs.get("deadLetterConfig") or {}).get("targetArn") or None,
        )
        return name, {
            "arn": arn,
            "name": name,
            "id": name,
            "invokeArn": f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
            f"{arn}/invocations",
            "qualifiedArn": f"{arn}:$LATEST",
            "version": "$LATEST",
        }

    def _mapping(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        scaling = inputs.get("scalingConfig") or {}
        function = str(inputs["functionName"])
        function = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        self.deployment.mappings.append(
            LocalMapping(
                queue_arn=str(inputs["eventSourceArn"]),
                function=function,
                batch_size=int(inputs.get("batchSize") or 10),
                batching_window=int(inputs.get("maximumBatchingWindowInSeconds") or 0),
                report_batch_item_failures="ReportBatchItemFailures"
                in (inputs.get("functionResponseTypes") or []),
                maximum_concurrency=scaling.get("maximumConcurrency"),
            )
        )
        mapping_id = f"{args.name}-mapping"
        return mapping_id, {"id": mapping_id, "uuid": mapping_id}

    def _rule(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        expression = args.inputs.get("scheduleExpression")
        if expression:
            self.deployment.schedules[name] = LocalSchedule(rule=name, expression=str(expression))
        return name, {"id": name, "name": name, "arn": self._arn("events", f"rule/{name}")}

    def _target(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        rule = str(args.inputs["rule"])
        schedule = self.deployment.schedules.get(rule)
        if schedule is not None:
            schedule.function_arn = str(args.inputs["arn"])
            schedule.input = args.inputs.get("input")
        target_id = f"{rule}-{args.inputs.get('targetId') or args.name}"
        return target_id, {"id": target_id}

    def _task_definition(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        definitions = _json(args.inputs.get("containerDefinitions") or "[]")
        family = str(args.inputs.get("family") or name)
        roles = {
            "taskRoleArn": args.inputs.get("taskRoleArn"),
            "executionRoleArn": args.inputs.get("executionRoleArn"),
        }
        for definition in definitions:
            self.deployment.containers.append({"family": family, **roles, **definition})
        arn = self._arn("ecs", f"task-definition/{family}:1")
        return arn, {"arn": arn, "id": arn, "revision": 1, "arnWithoutRevision": arn.rsplit(":", 1)[0]}

    # --- IAM: what the emulator enforces ---------------------------------------------------------

    def _role(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        role_name = _iam_name(str(inputs.get("name") or inputs.get("namePrefix") or args.name))
        trust = _document(inputs.get("assumeRolePolicy") or "")
        iam = self.client("iam")
        request: dict[str, Any] = {"RoleName": role_name, "AssumeRolePolicyDocument": trust}
        if inputs.get("path"):
            request["Path"] = str(inputs["path"])
        if inputs.get("description"):
            request["Description"] = str(inputs["description"])[:1000]
        if inputs.get("maxSessionDuration"):
            request["MaxSessionDuration"] = int(inputs["maxSessionDuration"])
        role = iam.create_role(**request)["Role"]
        for inline in inputs.get("inlinePolicies") or []:
            if inline.get("name") and inline.get("policy"):
                iam.put_role_policy(
                    RoleName=role_name,
                    PolicyName=str(inline["name"]),
                    PolicyDocument=_document(inline["policy"]),
                )
        for policy_arn in inputs.get("managedPolicyArns") or []:
            self._attach(role_name, str(policy_arn))
        self.deployment.roles[role["Arn"]] = LocalRole(role_name, role["Arn"], trust)
        return role_name, {"arn": role["Arn"], "name": role_name, "id": role_name, "uniqueId": role["RoleId"]}

    def _role_policy(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        role_name = _role_name(str(args.inputs["role"]))
        policy_name = _iam_name(str(args.inputs.get("name") or args.name), limit=128)
        self.client("iam").put_role_policy(
            RoleName=role_name, PolicyName=policy_name, PolicyDocument=_document(args.inputs["policy"])
        )
        policy_id = f"{role_name}:{policy_name}"
        return policy_id, {"id": policy_id, "name": policy_name, "role": role_name}

    def _policy(self, args: pulumi_mocks.MockResourceArgs, name: str) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        request: dict[str, Any] = {
            "PolicyName": _iam_name(
                str(inputs.get("name") or inputs.get("namePrefix") or args.name), limit=128
            ),
            "PolicyDocument": _document(inputs["policy"]),
        }
        if inputs.get("path"):
            request["Path"] = str(inputs["path"])
        if inputs.get("description"):
            request["Description"] = str(inputs["description"])[:1000]
        policy = self.client("iam").create_policy(**request)["Policy"]
        return policy["Arn"], {"arn": policy["Arn"], "id": policy["Arn"], "name": policy["PolicyName"]}

    def _role_policy_attachment(
        self, args: pulumi_mocks.MockResourceArgs, name: str
    ) -> tuple[str, dict[str, Any]]:
        role_name = _role_name(str(args.inputs["role"]))
        policy_arn = str(args.inputs["policyArn"])
        self._attach(role_name, policy_arn)
        attachment = f"{role_name}-{policy_arn.rsplit('/', 1)[-1]}"
        return attachment, {"id": attachment}

    def _attach(self, role_name: str, policy_arn: str) -> None:
        iam = self.client("iam")
        try:
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
        except iam.exceptions.NoSuchEntityException:
            if ":aws:policy/" in policy_arn:
                raise RuntimeError(
                    f"role {role_name}: AWS managed policy {policy_arn} is not loaded in the emulator; "
                    "start it with MOTO_IAM_LOAD_MANAGED_POLICIES=true, or grant exact actions instead"
                ) from None
            raise


def _document(value: Any) -> str:
    """A policy document as JSON text (inputs carry it as a string or, rarely, a mapping)."""
    return value if isinstance(value, str) else json.dumps(value)


def _iam_name(name: str, limit: int = 64) -> str:
    """An IAM name within the limit (long logical names keep a stable hash suffix)."""
    if len(name) <= limit:
        return name
    import zlib

    return f"{name[: limit - 9]}-{zlib.crc32(name.encode()):08x}"


def _role_name(role: str) -> str:
    """A RolePolicy's `role` input is the role's name (its id), or sometimes its ARN."""
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def _reserved(value: Any) -> int | None:
    """Reserved concurrency as the program declares it (-1 or absent: none)."""
    if value is None:
        return None
    number = int(value)
    return None if number < 0 else number


def _attribute(value: Any) -> str:
    """An SQS attribute value: integral numbers without the ".0" the engine's floats carry."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _metric_query(query: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData", False))}
    if query.get("expression"):
        rendered["Expression"] = query["expression"]
    if query.get("label"):
        rendered["Label"] = query["label"]
    metric = query.get("metric")
    if metric:
        rendered["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": [
                    {"Name": k, "Value": str(v)} for k, v in (metric.get("dimensions") or {}).items()
                ],
            },
            "Period": int(metric.get("period", 60)),
            "Stat": metric.get("stat", "Sum"),
        }
    return rendered
