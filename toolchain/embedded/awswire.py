"""AWS's wire formats, as far as the local runtime needs them.

The emulator's gatekeeper (IAM enforcement, fault injection) and the local Lambda Invoke API
must answer a refused or failed call exactly as AWS would, in the protocol the request spoke,
so that boto3 raises the same `ClientError` with the same code and applies the same retry
policy as on AWS. This module knows, per request:

- which service and operation it is (`X-Amz-Target` for the JSON protocols, `Action=` for the
  query protocol, the operation's HTTP route from botocore's model for the REST protocols, the
  `/service/…/operation/…` path for Smithy RPC v2 CBOR) and its parameters;
- how an error looks on that protocol (`render_error`): the JSON `__type` body (plus the
  `x-amzn-query-error` header of query-compatible services such as SQS), the XML
  `ErrorResponse` of the query protocol, the `x-amzn-ErrorType` header of REST-JSON, a CBOR map.

Pure: no network, no moto. botocore's service models are read for the metadata (protocol,
query compatibility, XML namespace) and the REST routes.
"""

from __future__ import annotations

import json
import re
import struct
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

_SIGNING_SCOPE = re.compile(r"Credential=(?P<key>[^/]+)/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")
_TARGET = re.compile(r"^(?P<prefix>[A-Za-z0-9_.]+)\.(?P<operation>[A-Za-z0-9]+)$")
_CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[A-Za-z0-9]+)$")

SIGNING_NAME_TO_SERVICE = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions"}
"""Signing names (credential scope) that differ from botocore's service name."""
SERVICE_TO_IAM_PREFIX = {"cloudwatch": "cloudwatch", "stepfunctions": "states"}
"""botocore service names whose IAM action prefix differs (default: the same name)."""


@dataclass(frozen=True)
class WireRequest:
    """One AWS API request, as the emulator received it."""

    service: str
    """botocore's service name (`dynamodb`, `sqs`, `ses`, `cloudwatch`…); '' when unknown."""
    operation: str
    """The API operation (`PutItem`); '' when it could not be told."""
    protocol: str
    """`json`, `query`, `rest-json`, `rest-xml`, `cbor` or `unknown`."""
    params: Mapping[str, Any] = field(default_factory=dict)
    region: str = ""
    access_key: str = ""
    """The access key id that signed the request; '' for an unsigned request."""
    json_version: str = "1.0"
    query_compatible: bool = False
    """The service speaks JSON but reports query-protocol error codes (SQS)."""

    @property
    def iam_prefix(self) -> str:
        """The prefix of the service's IAM actions (`dynamodb`, `sqs`, `ses`, `cloudwatch`)."""
        return SERVICE_TO_IAM_PREFIX.get(self.service, self.service)

    @property
    def name(self) -> str:
        """`service:Operation` (what the call counter reports)."""
        return f"{self.service or 'unknown'}:{self.operation or '?'}"


@dataclass(frozen=True)
class WireError:
    """An AWS error, independent of the protocol it is sent in."""

    code: str
    """The error code boto3 reports (`ThrottlingException`, `AccessDenied`)."""
    message: str
    status: int
    sender_fault: bool = True
    json_type: str = ""
    """The full `__type` of JSON protocols when AWS sends a namespaced one (default: the code)."""
    query_code: str = ""
    """The query-protocol code a query-compatible JSON service also sends (default: the code)."""


Rendered = tuple[int, list[tuple[str, str]], bytes]
"""(HTTP status, headers, body): a response ready to send."""


# --- botocore metadata -------------------------------------------------------------------------


@cache
def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.get_session()  # one loader: service models are read from disk once


@cache
def _service_model(service: str) -> Any:
    try:
        return _botocore_session().get_service_model(service)
    except Exception:  # unknown to botocore: treated as an unknown service
        return None


def load_models(services: tuple[str, ...]) -> None:
    """Read these services' models now (the first request of each would otherwise pay for it)."""
    for service in services:
        _metadata(service)


@cache
def _metadata(service: str) -> dict[str, Any]:
    model = _service_model(service)
    return dict(model.metadata) if model is not None else {}


@cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(HTTP method, path pattern, operation) for every operation of a REST service."""
    model = _service_model(service)
    if model is None:
        return []
    routes: list[tuple[str, re.Pattern[str], str, int]] = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http.get("requestUri", "/")).split("?", 1)[0]
        pattern = ""
        literal = 0
        for piece in re.split(r"(\{[^}]+\})", uri):
            if piece.startswith("{"):
                label = piece.strip("{}")
                greedy = label.endswith("+")
                label = label.rstrip("+")
                pattern += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
            else:
                pattern += re.escape(piece)
                literal += len(piece)
        routes.append((str(http.get("method", "POST")).upper(), re.compile(f"^{pattern}/?$"), name, literal))
    # The most specific route first: more literal characters wins.
    routes.sort(key=lambda route: -route[3])
    return [(method, pattern, name) for method, pattern, name, _ in routes]


def service_for_signing_name(signing_name: str) -> str:
    """botocore's service name for the service named in a request's credential scope."""
    return SIGNING_NAME_TO_SERVICE.get(signing_name, signing_name)


# --- parsing ------------------------------------------------------------------------------------


def _header(headers: Any, name: str) -> str:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value or "")


def signing_scope(headers: Any) -> tuple[str, str, str]:
    """(access key id, region, signing service) of a SigV4-signed request; ('', '', '') if unsigned."""
    match = _SIGNING_SCOPE.search(_header(headers, "Authorization"))
    if not match:
        return "", "", ""
    return match["key"], match["region"], match["service"]


def _form(text: str) -> dict[str, Any]:
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def parse_request(method: str, path: str, query: str, headers: Any, body: bytes) -> WireRequest:
    """Tell the service, operation, protocol and parameters of one request.

    `headers` is any mapping of header names to values (case-insensitive ones welcome)."""
    access_key, region, signing = signing_scope(headers)
    service = service_for_signing_name(signing) if signing else ""
    metadata = _metadata(service) if service else {}
    query_compatible = "awsQueryCompatible" in metadata
    target = _header(headers, "X-Amz-Target")
    content_type = _header(headers, "Content-Type").lower()
    common: dict[str, Any] = {
        "region": region,
        "access_key": access_key,
        "query_compatible": query_compatible,
    }

    target_match = _TARGET.match(target)
    if target_match:
        version = "1.1" if "1.1" in content_type else str(metadata.get("jsonVersion", "1.0"))
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return WireRequest(
            service=service,
            operation=target_match["operation"],
            protocol="json",
            params=params if isinstance(params, dict) else {},
            json_version=version,
            **common,
        )
    cbor_match = _CBOR_PATH.match(path)
    if cbor_match:
        return WireRequest(service=service, operation=cbor_match["operation"], protocol="cbor", **common)
    form = _form(query)
    if "form-urlencoded" in content_type or (method == "POST" and not content_type and body):
        form.update(_form(body.decode("utf-8", "replace")))
    if "Action" in form:
        action = str(form.pop("Action"))
        form.pop("Version", None)
        return WireRequest(service=service, operation=action, protocol="query", params=form, **common)
    protocol = str(metadata.get("protocol", "unknown"))
    if protocol in ("rest-json", "rest-xml") and service:
        for route_method, pattern, operation in _rest_routes(service):
            if route_method != method.upper():
                continue
            match = pattern.match(path)
            if match:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                params.update(form)
                if protocol == "rest-json" and body:
                    try:
                        decoded = json.loads(body)
                    except ValueError:
                        decoded = None
                    if isinstance(decoded, dict):
                        params.update(decoded)
                return WireRequest(
                    service=service, operation=operation, protocol=protocol, params=params, **common
                )
        return WireRequest(service=service, operation="", protocol=protocol, params=form, **common)
    return WireRequest(service=service, operation="", protocol="unknown", params=form, **common)


# --- rendering ----------------------------------------------------------------------------------


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    return _cbor_head(3, len(data)) + data


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 0x100:
        return bytes([major << 5 | 24, length])
    if length < 0x10000:
        return bytes([major << 5 | 25]) + struct.pack(">H", length)
    return bytes([major << 5 | 26]) + struct.pack(">I", length)


def cbor_map(values: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (all an RPC v2 CBOR error body needs)."""
    out = _cbor_head(5, len(values))
    for key, value in values.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def _xml_namespace(service: str) -> str:
    namespace = _metadata(service).get("xmlNamespace")
    if isinstance(namespace, dict):  # some models give {"uri": ...}
        namespace = namespace.get("uri")
    return str(namespace or f"https://{service or 'aws'}.amazonaws.com/doc/")


def render_error(request: WireRequest, error: WireError) -> Rendered:
    """`error` in the shape AWS sends it on `request`'s protocol (status, headers, body)."""
    request_id = str(uuid.uuid4())
    fault = "Sender" if error.sender_fault else "Receiver"
    headers = [("x-amzn-RequestId", request_id)]
    if request.protocol == "json":
        body = json.dumps({"__type": error.json_type or error.code, "message": error.message}).encode()
        headers.append(("Content-Type", f"application/x-amz-json-{request.json_version}"))
        if request.query_compatible:
            headers.append(("x-amzn-query-error", f"{error.query_code or error.code};{fault}"))
        return error.status, headers, body
    if request.protocol == "cbor":
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        if request.query_compatible:
            headers.append(("x-amzn-query-error", f"{error.query_code or error.code};{fault}"))
        return error.status, headers, cbor_map({"__type": error.code, "message": error.message})
    if request.protocol == "rest-json":
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.code)]
        text = json.dumps({"Type": "User" if error.sender_fault else "Service", "message": error.message})
        return error.status, headers, text.encode()
    # query and rest-xml (and anything unknown): the XML ErrorResponse.
    xml = (
        f'<ErrorResponse xmlns="{_xml_namespace(request.service)}">'
        f"<Error><Type>{fault}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    headers.append(("Content-Type", "text/xml"))
    return error.status, headers, xml.encode()


# --- the errors this runtime sends --------------------------------------------------------------

_ACCESS_DENIED: dict[str, WireError] = {
    "dynamodb": WireError(
        "AccessDeniedException", "", 400, json_type="com.amazon.coral.service#AccessDeniedException"
    ),
    "sqs": WireError(
        "AccessDenied",
        "",
        403,
        json_type="com.amazon.coral.service#AccessDeniedException",
        query_code="AccessDenied",
    ),
    "sns": WireError("AuthorizationError", "", 403),
    "ses": WireError("AccessDenied", "", 403),
    "lambda": WireError("AccessDeniedException", "", 403),
}
_KMS_DENIED: dict[str, WireError] = {
    "sqs": WireError(
        "KmsAccessDenied",
        "The caller doesn't have the required KMS access.",
        400,
        json_type="com.amazonaws.sqs#KmsAccessDenied",
        query_code="KMS.AccessDeniedException",
    ),
    "sns": WireError(
        "KMSAccessDenied",
        "The ciphertext references a key that doesn't exist or that you don't have access to.",
        400,
    ),
}


def access_denied(
    request: WireRequest, principal_arn: str, action: str, resource: str, *, explicit: bool, kms: bool = False
) -> WireError:
    """The AccessDenied error AWS sends when `principal_arn` may not do `action` on `resource`."""
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    message = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"
    if kms and request.service in _KMS_DENIED:
        template = _KMS_DENIED[request.service]
        return WireError(
            template.code,
            f"{template.message} ({message})",
            template.status,
            json_type=template.json_type,
            query_code=template.query_code,
        )
    known = _ACCESS_DENIED.get(request.service)
    if known is not None:
        template = known
    elif request.protocol == "json":
        # A JSON service that keeps its query-protocol errors (CloudWatch) keeps their status too.
        status = 403 if request.query_compatible else 400
        template = WireError("AccessDeniedException", "", status, query_code="AccessDenied")
    elif request.protocol == "rest-json":
        template = WireError("AccessDeniedException", "", 403)
    else:
        template = WireError("AccessDenied", "", 403, query_code="AccessDenied")
    return WireError(
        template.code, message, template.status, json_type=template.json_type, query_code=template.query_code
    )


def invalid_credentials(request: WireRequest, reason: str) -> WireError:
    """The error AWS sends for an unknown access key, a bad session token or a bad signature."""
    if reason == "signature":
        message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
        if request.protocol in ("json", "rest-json", "cbor"):
            return WireError("InvalidSignatureException", message, 403 if request.protocol != "json" else 400)
        return WireError("SignatureDoesNotMatch", message, 403)
    message = "The security token included in the request is invalid."
    if request.protocol in ("json", "rest-json", "cbor"):
        return WireError(
            "UnrecognizedClientException",
            message,
            400 if request.protocol == "json" else 403,
            query_code="InvalidClientTokenId",
        )
    return WireError("InvalidClientTokenId", message, 403)
