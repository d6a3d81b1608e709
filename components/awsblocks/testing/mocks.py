"""Deterministic stand-ins for the AWS provider, for Pulumi's mock runtime.

Enough for every reference a program built from this library makes to resolve: each resource gets
plausible computed outputs (ids, ARNs, URLs, names), and the data sources the components call
(availability zones, caller identity, region, partition, IAM policy documents, ECR tokens, public
SSM parameters) get answers shaped as AWS gives them. Subclass `OfflineMocks` for anything else.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

MOCK_ACCOUNT_ID = "123456789012"
"""The account every offline synthesis deploys into."""


_SERVICE_OF_MODULE = {
    "cloudwatch": "logs",
    "alb": "elasticloadbalancing",
    "lb": "elasticloadbalancing",
    "cognito": "cognito-idp",
    "wafv2": "wafv2",
    "cloudwatch/eventRule": "events",
}


def _service_for(type_token: str) -> str:
    module = type_token.split(":")[1].split("/")[0] if type_token.count(":") >= 2 else "x"
    return _SERVICE_OF_MODULE.get(module, module)


def _physical_name(args: pulumi_mocks.MockResourceArgs) -> str:
    """A name like the one the provider would auto-generate (logical name plus a suffix)."""
    for key in ("name", "bucket", "functionName", "clusterName", "repositoryName"):
        value = args.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return f"{args.name}-{zlib.crc32(args.name.encode()) & 0xFFFFFFF:07x}"


class OfflineMocks(pulumi_mocks.Mocks):
    """Deterministic stand-ins for the AWS provider: enough for every reference to resolve."""

    def __init__(self, region: str, account_id: str = MOCK_ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if not args.custom:
            return f"{args.name}-component", state
        name = _physical_name(args)
        resource_id = f"{name}-id"
        service = _service_for(args.typ)
        arn = f"arn:aws:{service}:{self.region}:{self.account_id}:{name}"
        state.setdefault("name", name)
        state.setdefault("arn", arn)
        state.setdefault("id", resource_id)
        token = args.typ
        if token == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
            resource_id = state["url"]
        elif token == "aws:kms/key:Key":
            state["keyId"] = f"{name}-key-id"
            state["arn"] = f"arn:aws:kms:{self.region}:{self.account_id}:key/{name}-key-id"
        elif token in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
            state["arnSuffix"] = f"app/{name}/0123456789abcdef"
            state["dnsName"] = f"{name}.{self.region}.elb.amazonaws.com"
            state["zoneId"] = "ZWKZPGTI48KDX"
        elif token in ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"):
            state["arnSuffix"] = f"targetgroup/{name}/0123456789abcdef"
        elif token == "aws:cognito/userPool:UserPool":
            resource_id = f"{self.region}_MockPool1"
            state["endpoint"] = f"cognito-idp.{self.region}.amazonaws.com/{resource_id}"
        elif token == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{name}"
            state["registryId"] = self.account_id
        elif token == "docker:index/image:Image":
            # Mocks only record: nothing is built or pushed. The digest stands in for the pushed one.
            digest = zlib.crc32(str(args.inputs.get("imageName")).encode())
            state["repoDigest"] = f"{str(args.inputs.get('imageName')).split(':')[0]}@sha256:{digest:064x}"
        elif token == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:{self.region}:lambda:path/functions/{arn}/invocations"
        elif token == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{self.account_id}:role/{name}"
        elif token == "aws:ec2/securityGroup:SecurityGroup":
            resource_id = f"sg-{zlib.crc32(name.encode()):08x}"
        elif token == "aws:s3/bucketObjectv2:BucketObjectv2":
            # A versioned bucket gives every upload a version id: the uploaded bytes' hash stands in
            # for it, so the same package from any checkout gets the same version (and signed key).
            state["versionId"] = f"v{zlib.crc32(_source_bytes(args.inputs)):08x}"
        elif token == "aws:signer/signingProfile:SigningProfile":
            profile = f"{args.inputs.get('namePrefix') or ''}{zlib.crc32(args.name.encode()):08x}"
            state["name"] = profile
            state["arn"] = f"arn:aws:signer:{self.region}:{self.account_id}:/signing-profiles/{profile}"
            state["version"] = "v1a2b3c4d5"
            state["versionArn"] = f"{state['arn']}/v1a2b3c4d5"
        elif token == "aws:signer/signingJob:SigningJob":
            state.update(signing_job_outputs(args.inputs))
            resource_id = state["jobId"]
        return resource_id, state

    def public_parameter(self, name: str) -> str:
        """The value of an AWS public SSM parameter the program reads (override for others).

        Known: Powertools for AWS Lambda (Python)'s per-release layer ARN, in AWS's documented
        form (https://docs.aws.amazon.com/powertools/python/latest/#lambda-layer), with the layer
        version `OFFLINE_LAYER_VERSION` (AWS's number is only known to the parameter itself).
        """
        match = POWERTOOLS_PARAMETER.match(name)
        if match is None:
            raise NotImplementedError(
                f"the offline mocks do not know the SSM parameter {name!r}; subclass OfflineMocks "
                "and answer it in public_parameter()"
            )
        partition = "aws-cn" if self.region.startswith("cn-") else "aws"
        runtime = match["python"].replace(".", "")
        return (
            f"arn:{partition}:lambda:{self.region}:{POWERTOOLS_ACCOUNTS[partition]}:layer:"
            f"AWSLambdaPowertoolsPythonV3-{runtime}-{match['arch']}:{OFFLINE_LAYER_VERSION}"
        )

    def _public_parameter(self, name: str) -> dict[str, Any]:
        value = self.public_parameter(name)
        return {"name": name, "value": value, "insecureValue": value, "type": "String", "id": name}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcd"
            return {
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"apne2-az{i + 1}" for i in range(len(letters))],
                "id": self.region,
            }, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/preview",
                "userId": "AIDAPREVIEW",
                "id": self.account_id,
            }, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = args.args.get("registryId") or self.account_id
            return {
                "authorizationToken": "cHJldmlldzpwcmV2aWV3",
                "expiresAt": "2000-01-01T00:00:00Z",
                "password": "preview",
                "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
                "userName": "AWS",
                "id": self.region,
            }, []
        if token == "aws:ssm/getParameter:getParameter":
            return self._public_parameter(str(args.args.get("name", ""))), []
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": policy_document_json(args.args), "id": "policy"}, []
        raise NotImplementedError(
            f"the offline mocks do not answer data source {token}; subclass OfflineMocks and answer "
            "it in call()"
        )


def signing_job_outputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What AWS Signer reports for a finished job: its id and the signed copy it wrote
    (`<destination prefix><job id>.zip` in the destination bucket)."""
    source = (inputs.get("source") or {}).get("s3") or {}
    destination = (inputs.get("destination") or {}).get("s3") or {}
    origin = f"{source.get('bucket')}/{source.get('key')}@{source.get('version')}"
    job_id = f"{zlib.crc32(origin.encode()):08x}-0000-4000-8000-{zlib.crc32(origin[::-1].encode()):012x}"
    key = f"{destination.get('prefix') or ''}{job_id}.zip"
    return {
        "jobId": job_id,
        "status": "Succeeded",
        "signedObjects": [{"s3s": [{"bucket": destination.get("bucket"), "key": key}]}],
    }


POWERTOOLS_PARAMETER = re.compile(
    r"^/aws/service/powertools/python/(?P<arch>x86_64|arm64)/(?P<python>python3\.\d+)/(?P<release>[0-9.]+)$"
)
POWERTOOLS_ACCOUNTS = {"aws": "017000801446", "aws-cn": "498634801083"}
"""The accounts that publish Powertools' public layers, per partition."""
OFFLINE_LAYER_VERSION = 1
"""The layer version offline answers carry: AWS's number is only known to its SSM parameter."""


def _source_bytes(inputs: Mapping[str, Any]) -> bytes:
    """The bytes an S3 upload sends: its file's content, else its key (nothing to read offline)."""
    path = getattr(inputs.get("source"), "path", None)
    if path and Path(str(path)).is_file():
        return Path(str(path)).read_bytes()
    return str(inputs.get("key", "")).encode()


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def policy_document_json(args: Mapping[str, Any]) -> str:
    """Render `aws.iam.get_policy_document` arguments the way the provider does."""
    statements = []
    for stmt in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if stmt.get("sid"):
            rendered["Sid"] = stmt["sid"]
        rendered["Effect"] = stmt.get("effect", "Allow")
        for src, dst in (("actions", "Action"), ("notActions", "NotAction")):
            if stmt.get(src):
                values = stmt[src]
                rendered[dst] = values[0] if len(values) == 1 else values
        for src, dst in (("resources", "Resource"), ("notResources", "NotResource")):
            if stmt.get(src):
                values = stmt[src]
                rendered[dst] = values[0] if len(values) == 1 else values
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if stmt.get(src):
                principals: dict[str, Any] = {}
                for principal in stmt[src]:
                    ids = principal["identifiers"]
                    principals[principal["type"]] = ids[0] if len(ids) == 1 else ids
                rendered[dst] = principals
        if stmt.get("conditions"):
            conditions: dict[str, dict[str, Any]] = {}
            for cond in stmt["conditions"]:
                values = cond["values"]
                conditions.setdefault(cond["test"], {})[cond["variable"]] = (
                    values[0] if len(values) == 1 else values
                )
            rendered["Condition"] = conditions
        statements.append(rendered)
    return json.dumps({"Version": args.get("version", "2012-10-17"), "Statement": statements})
