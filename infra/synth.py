"""Run the real program (or one component) under Pulumi's mock runtime and record what it declares.

One implementation serves the tests (the `synth` fixture), `make preview` and `make report`:
`synthesize()` sets `pulumi.runtime.set_mocks` with a recording monitor, loads the stack's
config from `Pulumi.<stack>.yaml`, runs the program and returns every resource with its type
token, logical name, resolved inputs, parent and provider. The mocks answer the data sources
the program calls (availability zones, caller identity, region, partition, IAM policy
documents) and give each resource plausible computed outputs (ids, ARNs, URLs, names).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.config import PROJECT

REPO_ROOT = Path(__file__).resolve().parent.parent
MOCK_ACCOUNT_ID = "123456789012"
STACK_TYPE = "pulumi:pulumi:Stack"


def stack_names() -> list[str]:
    """Every committed stack (one per `Pulumi.<stack>.yaml`)."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def _as_config_string(value: Any) -> str:
    """Config values as the Pulumi CLI hands them to a program: strings, JSON for structures."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def stand_ins(raw: Mapping[str, str]) -> dict[str, str]:
    """Offline stand-ins for the values only the user can supply, where the stack leaves them unset.

    A prod stack needs the user's own certificate, alert address and sender (infra/config.py
    refuses it otherwise, and so does `pulumi up`); the committed Pulumi.prod.yaml cannot name
    them. Tests, `make preview` and `make report` synthesize prod as it will be once configured,
    with these: an ACM ARN in the mocks' account and `.invalid` addresses (RFC 2606).
    """
    if raw.get(f"{PROJECT}:environment") != "prod":
        return {}
    region = raw.get("aws:region", "ap-northeast-2")
    values = {
        f"{PROJECT}:certificateArn": (
            f"arn:aws:acm:{region}:{MOCK_ACCOUNT_ID}:certificate/00000000-0000-4000-8000-000000000000"
        ),
        f"{PROJECT}:alertEmail": "ops-alerts@stand-in.invalid",
        f"{PROJECT}:sesSender": "notifications@stand-in.invalid",
    }
    return {key: value for key, value in values.items() if not raw.get(key)}


def read_stack_config(stack: str, *, with_stand_ins: bool = True) -> dict[str, str]:
    """The `config:` block of `Pulumi.<stack>.yaml`, as the CLI would pass it.

    With `with_stand_ins` (offline synthesis), the values only the user can supply are filled in
    by `stand_ins`; without, exactly the file, which a prod stack's config check refuses.
    """
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names()) or "none"
        raise FileNotFoundError(f"no stack file {path.name}; committed stacks: {known}")
    document = yaml.safe_load(path.read_text()) or {}
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: 'config' must be a mapping of keys to values")
    config = {str(k): _as_config_string(v) for k, v in raw.items()}
    return {**config, **stand_ins(config)} if with_stand_ins else config


# --- what the mocks return -------------------------------------------------------------------

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

    def _public_parameter(self, name: str) -> dict[str, Any]:
        """The public SSM parameters the program reads (Powertools' per-release layer ARN)."""
        from lambdas import packaging

        match = POWERTOOLS_PARAMETER.match(name)
        if match is None:
            raise NotImplementedError(
                f"the offline mocks do not know the SSM parameter {name!r}; add it to "
                "infra/synth.py OfflineMocks._public_parameter"
            )
        value = packaging.powertools_layer_arn(self.region, match["arch"], version=OFFLINE_LAYER_VERSION)
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
            f"the offline mocks do not answer data source {token}; add it to infra/synth.py OfflineMocks.call"
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
    r"^/aws/service/powertools/python/(?P<arch>x86_64|arm64)/python3\.\d+/(?P<release>[0-9.]+)$"
)
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


# --- what gets recorded ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredResource:
    """One resource the program declared, with its inputs as the engine would receive them."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    custom: bool
    id: str = ""
    aliases: tuple[dict[str, str], ...] = ()
    """The old identities this resource answers to (`type`, `name` of each alias spec that sets them)."""
    outputs: dict[str, Any] = field(default_factory=dict, compare=False)
    state: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the provider (here: the mocks) returned: the inputs plus computed ids, ARNs, URLs.

    This is the shape a policy pack's stack validation sees (`PolicyResource.props`)."""

    @property
    def is_component(self) -> bool:
        """Components group children; they are not created in AWS."""
        return not self.custom

    @property
    def is_provider(self) -> bool:
        """Provider resources (`pulumi:providers:aws`)."""
        return self.type.startswith("pulumi:providers:")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The standard mock monitor, plus a record of parent, provider and inputs of every resource."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.declared: dict[str, DeclaredResource] = {}
        self.order: list[str] = []
        self.registered_outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        provider_ref = request.provider or None
        urn = response.urn
        self.declared[urn] = DeclaredResource(
            urn=urn,
            type=request.type,
            name=request.name,
            inputs=_plain(inputs),
            parent=request.parent or None,
            provider=provider_ref.rsplit("::", 1)[0] if provider_ref else None,
            custom=bool(request.custom),
            id=response.id or "",
            aliases=_alias_specs(request),
            state=_plain(self.resources[urn].state) if urn in self.resources else {},
        )
        self.order.append(urn)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        _ensure_event_loop()
        self.registered_outputs[request.urn] = _plain(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


def _alias_specs(request: Any) -> tuple[dict[str, str], ...]:
    """The type and name each alias spec of a registration points back to."""
    found = []
    for alias in getattr(request, "aliases", None) or ():
        if alias.WhichOneof("alias") != "spec":
            continue
        spec = {key: getattr(alias.spec, key) for key in ("type", "name") if getattr(alias.spec, key)}
        if spec:
            found.append(spec)
    return tuple(found)


def _plain(value: Any) -> Any:
    """Strip Pulumi's wrappers (secrets, resource references) down to JSON-like values."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return getattr(value, "_name", repr(value))
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {type(value).__name__[0].lower() + type(value).__name__[1:]: str(value.path)}
    if isinstance(value, pulumi.AssetArchive):
        return {"assetArchive": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"stringAsset": value.text}
    return value


@dataclass
class Synthesis:
    """Everything one run declared, with the queries tests and reports need."""

    stack: str
    resources: list[DeclaredResource]
    stack_outputs: dict[str, Any]
    component_outputs: dict[str, dict[str, Any]]

    def __iter__(self) -> Iterator[DeclaredResource]:
        return iter(self.resources)

    @property
    def by_urn(self) -> dict[str, DeclaredResource]:
        """Resources keyed by URN."""
        return {r.urn: r for r in self.resources}

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        """Every resource with this type token, in declaration order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> DeclaredResource:
        """The one resource with this logical name (and type); raises if none or many."""
        found = [r for r in self.resources if r.name == name and (type_token is None or r.type == type_token)]
        if len(found) != 1:
            raise LookupError(
                f"expected one resource named {name!r} ({type_token or 'any type'}), found {len(found)}"
            )
        return found[0]

    def children(self, parent: DeclaredResource) -> list[DeclaredResource]:
        """Direct children of a resource."""
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: DeclaredResource) -> list[DeclaredResource]:
        """Children, grandchildren and so on."""
        found: list[DeclaredResource] = []
        frontier = [parent.urn]
        while frontier:
            urn = frontier.pop()
            for child in self.resources:
                if child.parent == urn:
                    found.append(child)
                    frontier.append(child.urn)
        return found

    def component_of(self, resource: DeclaredResource) -> DeclaredResource | None:
        """The nearest component that contains this resource."""
        urns = self.by_urn
        parent = urns.get(resource.parent or "")
        while parent is not None and not parent.is_component:
            parent = urns.get(parent.parent or "")
        return parent

    @property
    def cloud_resources(self) -> list[DeclaredResource]:
        """Resources that would exist in AWS (no components, no providers)."""
        return [r for r in self.resources if r.custom and not r.is_provider]

    def count_by_type(self) -> Counter[str]:
        """How many cloud resources of each type the stack creates."""
        return Counter(r.type for r in self.cloud_resources)

    def provider_default_tags(self, resource: DeclaredResource) -> dict[str, str]:
        """The default tags of the provider a resource is created with."""
        if not resource.provider:
            return {}
        provider = self.by_urn.get(resource.provider)
        if provider is None:
            return {}
        default_tags = provider.inputs.get("defaultTags") or {}
        if isinstance(default_tags, str):
            default_tags = json.loads(default_tags)
        return dict(default_tags.get("tags") or {})

    def effective_tags(self, resource: DeclaredResource) -> dict[str, str]:
        """Tags AWS would show: provider default tags overlaid by the resource's own."""
        return {**self.provider_default_tags(resource), **(resource.inputs.get("tags") or {})}


def synthesize(
    stack: str,
    *,
    config: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    program: Callable[[], Any] | None = None,
    mocks: pulumi_mocks.Mocks | None = None,
    monitor: RecordingMonitor | None = None,
) -> Synthesis:
    """Run `program` (default: the whole stack) for `stack` under mocks and record every resource.

    `config` replaces the stack file's config entirely; `overrides` patch single keys
    (`{"crowdfunding:azCount": 3}`; a value of None removes the key). Pass `monitor` to
    inspect what was declared even when the program fails.
    """
    raw = dict(config) if config is not None else read_stack_config(stack)
    for key, value in (overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = _as_config_string(value)
    region = raw.get("aws:region", "ap-northeast-2")
    monitor = monitor or RecordingMonitor(mocks or OfflineMocks(region))
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(raw)

    if program is None:
        from infra.stack import main as stack_main

        program = stack_main
    run: Callable[[], Any] = program
    _sync_await(run_pulumi_func(run))
    root = settings.get_root_resource()
    stack_outputs: dict[str, Any] = {}
    if root is not None:
        for key, output in getattr(root, "outputs", {}).items():
            stack_outputs[key] = _plain(_sync_await(pulumi.Output.from_input(output).future()))
    resources = [monitor.declared[urn] for urn in monitor.order]
    resources = [
        DeclaredResource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=r.inputs,
            parent=r.parent
            if r.parent and not r.parent.endswith(f"::{STACK_TYPE}::{PROJECT}-{stack}")
            else None,
            provider=r.provider,
            custom=r.custom,
            id=r.id,
            aliases=r.aliases,
            outputs=monitor.registered_outputs.get(r.urn, {}),
            state=r.state,
        )
        for r in resources
    ]
    return Synthesis(
        stack=stack,
        resources=resources,
        stack_outputs=stack_outputs,
        component_outputs={
            urn: out for urn, out in monitor.registered_outputs.items() if urn in monitor.declared
        },
    )


_TOKEN_PATTERN = re.compile(r"^(?P<pkg>[^:]+):(?P<module>[^:]+):(?P<name>[^:]+)$")


def short_type(type_token: str) -> str:
    """`aws:ec2/subnet:Subnet` → `aws:ec2:Subnet`, the way `pulumi preview` prints types."""
    match = _TOKEN_PATTERN.match(type_token)
    if not match:
        return type_token
    module = match["module"].split("/")[0]
    return f"{match['pkg']}:{module}:{match['name']}"
