"""The local runtime's AWS wire formats: requests as botocore sends them, errors as boto3 reads them.

Each error the emulator renders (an injected fault, an IAM denial) is fed back to a real boto3
client in place of the HTTP response, so these tests check what a function actually sees: the
ClientError code, the HTTP status and whether the SDK's own retry policy retries it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError

from toolchain.embedded.awswire import (
    WireError,
    WireRequest,
    access_denied,
    cbor_map,
    invalid_credentials,
    parse_request,
    render_error,
)
from toolchain.embedded.faults import AWS_FAULTS, faults_for

REGION = "ap-northeast-2"
QUEUE_URL = "http://127.0.0.1:4566/123456789012/orders"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:events"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


SESSION = boto3.session.Session(
    aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret", region_name=REGION
)


def _client(service: str, mode: str = "standard", attempts: int = 3) -> Any:
    return SESSION.client(
        service,
        endpoint_url="http://127.0.0.1:4566",
        config=Config(retries={"mode": mode, "total_max_attempts": attempts}),
    )


CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "dynamodb": ("GetItem", lambda c: c.get_item(TableName="orders", Key={"id": {"S": "1"}})),
    "sqs": ("SendMessage", lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody="x")),
    "sns": ("Publish", lambda c: c.publish(TopicArn=TOPIC_ARN, Message="x")),
    "ses": (
        "SendEmail",
        lambda c: c.send_email(
            Source="Shop <shop@example.com>",
            Destination={"ToAddresses": ["a@example.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        ),
    ),
    "lambda": ("Invoke", lambda c: c.invoke(FunctionName="gateway", Payload=b"{}")),
    "cognito-idp": ("ListUsers", lambda c: c.list_users(UserPoolId=f"{REGION}_pool")),
    "cloudwatch": (
        "PutMetricData",
        lambda c: c.put_metric_data(Namespace="Shop", MetricData=[{"MetricName": "m", "Value": 1.0}]),
    ),
}


@cache
def captured(service: str) -> tuple[WireRequest, Any]:
    """The request botocore sends for CALLS[service], parsed the way the emulator parses it."""
    client = _client(service, attempts=1)
    seen: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen.append(request)
        return AWSResponse(request.url, 200, HeadersDict({}), _Raw(b""))

    client.meta.events.register("before-send", capture)
    with contextlib.suppress(Exception):  # the empty answer may not parse: only the request matters
        CALLS[service][1](client)
    request = seen[0]
    path, _, query = request.url.split("://", 1)[1].partition("/")[2].partition("?")
    body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
    return parse_request(request.method, "/" + path, query, request.headers, body), request


def answered(
    service: str, rendered: tuple[int, list[tuple[str, str]], bytes], **client: Any
) -> tuple[ClientError, int]:
    """(the ClientError boto3 raises when every attempt gets `rendered`, how many attempts it made)."""
    status, headers, body = rendered
    attempts = [0]
    api = _client(service, **client)

    def answer(request: Any, **_: Any) -> AWSResponse:
        attempts[0] += 1
        return AWSResponse(request.url, status, HeadersDict(dict(headers)), _Raw(body))

    api.meta.events.register("before-send", answer)
    # No real back-off sleeps in a unit test.
    api.meta.events.register("before-sleep", lambda **_: None)
    with pytest.raises(ClientError) as raised:
        CALLS[service][1](api)
    return raised.value, attempts[0]


@pytest.mark.parametrize(
    ("service", "protocol", "operation"),
    [
        ("dynamodb", "json", "GetItem"),
        ("sqs", "json", "SendMessage"),
        ("sns", "query", "Publish"),
        ("ses", "query", "SendEmail"),
        ("lambda", "rest-json", "Invoke"),
        ("cognito-idp", "json", "ListUsers"),
        ("cloudwatch", "json", "PutMetricData"),
    ],
)
def test_requests_are_told_apart_as_botocore_sends_them(service: str, protocol: str, operation: str) -> None:
    request, _ = captured(service)
    assert (request.service, request.protocol, request.operation) == (service, protocol, operation)
    assert request.region == REGION and request.access_key == "AKIAEXAMPLE"


def test_request_parameters_are_read_per_protocol() -> None:
    assert captured("dynamodb")[0].params["TableName"] == "orders"
    assert captured("sqs")[0].params["QueueUrl"] == QUEUE_URL
    assert captured("sqs")[0].query_compatible
    assert captured("sns")[0].params["TopicArn"] == TOPIC_ARN
    assert captured("ses")[0].params["Source"] == "Shop <shop@example.com>"
    assert captured("lambda")[0].params["FunctionName"] == "gateway"


def test_an_unsigned_request_has_no_access_key() -> None:
    request = parse_request("GET", "/pool/.well-known/jwks.json", "", {}, b"")
    assert request.access_key == "" and request.operation == ""


FAULT_CASES = [
    (service, error) for service, errors in AWS_FAULTS.items() for error in errors if service in CALLS
]


@pytest.mark.parametrize(("service", "error"), FAULT_CASES, ids=[f"{s}-{e.code}" for s, e in FAULT_CASES])
def test_every_injected_fault_is_the_error_boto3_knows_and_retries(service: str, error: WireError) -> None:
    request, _ = captured(service)
    raised, attempts = answered(service, render_error(request, error), mode="standard", attempts=3)
    assert raised.response["Error"]["Code"] == error.code
    assert raised.response["ResponseMetadata"]["HTTPStatusCode"] == error.status
    # Every fault is a throttle or a 5xx: the SDK's standard policy retries each of them.
    assert attempts == 3


def test_a_fault_the_legacy_policy_does_not_retry_is_seen_once() -> None:
    # Legacy retry mode (boto3's default) has no rule for SQS's RequestThrottled at HTTP 400:
    # exactly what a function on AWS would see.
    request, _ = captured("sqs")
    throttled = next(e for e in AWS_FAULTS["sqs"] if e.code == "RequestThrottled")
    raised, attempts = answered("sqs", render_error(request, throttled), mode="legacy", attempts=5)
    assert raised.response["Error"]["Code"] == "RequestThrottled" and attempts == 1


DENIALS = {
    "dynamodb": ("AccessDeniedException", 400),
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "ses": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403),
    "cognito-idp": ("AccessDeniedException", 400),
    "cloudwatch": ("AccessDenied", 403),
}


@pytest.mark.parametrize("service", sorted(DENIALS))
def test_denials_read_as_aws_access_denied_and_are_not_retried(service: str) -> None:
    request, _ = captured(service)
    principal = "arn:aws:sts::123456789012:assumed-role/worker/session"
    error = access_denied(request, principal, f"{service}:{request.operation}", "arn:aws:x", explicit=False)
    raised, attempts = answered(service, render_error(request, error))
    code, status = DENIALS[service]
    assert raised.response["Error"]["Code"] == code
    assert raised.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert principal in raised.response["Error"]["Message"]
    assert "because no identity-based policy allows" in raised.response["Error"]["Message"]
    assert attempts == 1


def test_an_explicit_deny_says_so() -> None:
    request, _ = captured("dynamodb")
    error = access_denied(request, "arn:p", "dynamodb:GetItem", "arn:t", explicit=True)
    assert "with an explicit deny in an identity-based policy" in error.message


def test_kms_denials_take_the_services_own_codes() -> None:
    sqs, _ = captured("sqs")
    sns, _ = captured("sns")
    assert (
        answered(
            "sqs", render_error(sqs, access_denied(sqs, "p", "kms:Decrypt", "k", explicit=False, kms=True))
        )[0].response["Error"]["Code"]
        == "KMS.AccessDeniedException"
    )
    assert (
        answered(
            "sns", render_error(sns, access_denied(sns, "p", "kms:Decrypt", "k", explicit=False, kms=True))
        )[0].response["Error"]["Code"]
        == "KMSAccessDenied"
    )


@pytest.mark.parametrize(
    ("service", "reason", "code"),
    [
        ("dynamodb", "credentials", "UnrecognizedClientException"),
        ("dynamodb", "signature", "InvalidSignatureException"),
        ("sns", "credentials", "InvalidClientTokenId"),
        ("sns", "signature", "SignatureDoesNotMatch"),
        ("sqs", "credentials", "InvalidClientTokenId"),
    ],
)
def test_bad_credentials_read_as_aws_reports_them(service: str, reason: str, code: str) -> None:
    request, _ = captured(service)
    raised, _attempts = answered(service, render_error(request, invalid_credentials(request, reason)))
    assert raised.response["Error"]["Code"] == code


def test_cbor_errors_parse_with_botocores_rpc_v2_cbor_parser() -> None:
    from botocore.parsers import RpcV2CBORParser

    cbor = WireRequest(
        service="cloudwatch", operation="PutMetricData", protocol="cbor", query_compatible=True
    )
    long_message = "x" * 300  # a two-byte length in the CBOR head
    status, headers, body = render_error(
        cbor, WireError("AccessDeniedException", long_message, 403, query_code="AccessDenied")
    )
    parsed = RpcV2CBORParser()._do_error_parse(
        {"body": body, "headers": HeadersDict(dict(headers)), "status_code": status}, None
    )
    assert (parsed["Error"]["Code"], parsed["Error"]["Message"]) == ("AccessDenied", long_message)
    assert cbor_map({})[0] == 0xA0


def test_every_service_with_json_or_query_has_faults() -> None:
    assert faults_for("kms", "json") and faults_for("sts", "query")
    assert faults_for("cloudwatch", "cbor") == ()
    assert json.loads(render_error(captured("dynamodb")[0], AWS_FAULTS["dynamodb"][0])[2])["__type"].endswith(
        "#ThrottlingException"
    )
