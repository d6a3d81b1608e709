"""The emulator's gatekeeper, in process: boto3 clients whose requests go straight into the WSGI app.

Checks what the functions and the API meet on the wire: enforcement off during bootstrap, then
every call authenticated and authorized per resource; faults only for function and API sessions;
the runner never faulted; the local endpoints the runner and `make iam-report` read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.test import EnvironBuilder, run_wsgi_app

from toolchain.embedded.emulator import LOCAL_ACCESS_KEY, RUNNER_USER, Gatekeeper, caching_dispatcher

REGION = "ap-northeast-2"
TABLE = f"arn:aws:dynamodb:{REGION}:123456789012:table/orders"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def call_app(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    environ = EnvironBuilder(method=method, path=path, data=body, headers=headers or {}).get_environ()
    iterable, status, _ = run_wsgi_app(app, environ)
    return int(status.split()[0]), b"".join(iterable)


def local(app: Any, path: str, payload: Any = None) -> Any:
    body = b"" if payload is None else json.dumps(payload).encode()
    status, answer = call_app(app, "POST" if payload is not None else "GET", path, body)
    assert status == 200, answer
    return json.loads(answer)


@pytest.fixture
def gatekeeper() -> Gatekeeper:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.moto_api._internal.models import moto_api_backend

    assert DEFAULT_ACCOUNT_ID == "123456789012"
    moto_api_backend.reset()  # a fresh set of backends for each test
    return Gatekeeper(caching_dispatcher())


def client(
    app: Gatekeeper,
    service: str,
    key: str = LOCAL_ACCESS_KEY,
    secret: str = LOCAL_ACCESS_KEY,
    token: str | None = None,
) -> Any:
    api = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
    ).client(service, endpoint_url="http://127.0.0.1:4566", config=Config(retries={"total_max_attempts": 1}))

    def route(request: Any, **_: Any) -> AWSResponse:
        host_and_path = request.url.split("://", 1)[1]
        path, _, query = ("/" + host_and_path.partition("/")[2]).partition("?")
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        environ = EnvironBuilder(
            method=request.method,
            path=path,
            query_string=query,
            headers=headers,
            data=body,
            base_url="http://127.0.0.1:4566",
        ).get_environ()
        iterable, status, response_headers = run_wsgi_app(app, environ)
        return AWSResponse(
            request.url, int(status.split()[0]), HeadersDict(dict(response_headers)), _Raw(b"".join(iterable))
        )

    api.meta.events.register("before-send", route)
    return api


def bootstrap(app: Gatekeeper) -> dict[str, str]:
    """Bootstrap as the runner (auth off): a table and a role that may read it; then enforce."""
    runner = client(app, "dynamodb")
    runner.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    iam = client(app, "iam")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="reader",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}],
            }
        ),
    )
    assert local(app, "/_local/auth", {"enforce": True}) == {"enforcing": True, "runner": RUNNER_USER}
    credentials = client(app, "sts").assume_role(RoleArn=role, RoleSessionName="reader-session")[
        "Credentials"
    ]
    return {
        "key": credentials["AccessKeyId"],
        "secret": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
    }


def test_enforced_iam_allows_the_grant_denies_the_rest_and_records_both(gatekeeper: Gatekeeper) -> None:
    session = bootstrap(gatekeeper)
    reader = client(gatekeeper, "dynamodb", **session)
    reader.get_item(TableName="orders", Key={"id": {"S": "1"}})
    with pytest.raises(ClientError) as denied:
        reader.put_item(TableName="orders", Item={"id": {"S": "1"}})
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "assumed-role/reader/reader-session" in denied.value.response["Error"]["Message"]
    # The runner is an administrator; a stranger's key is refused.
    client(gatekeeper, "dynamodb").put_item(TableName="orders", Item={"id": {"S": "1"}})
    with pytest.raises(ClientError) as unknown:
        client(gatekeeper, "dynamodb", key="AKIAUNKNOWN", secret="x").list_tables()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as forged:
        client(
            gatekeeper, "dynamodb", key=session["key"], secret="wrong", token=session["token"]
        ).list_tables()
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    iam = local(gatekeeper, "/_local/iam")
    assert iam["roles"]["reader"]["used"] == {"dynamodb:GetItem": {TABLE: 1}}
    assert iam["roles"]["reader"]["denied"] == {"dynamodb:PutItem": {TABLE: 1}}
    assert local(gatekeeper, "/_local/stats")["accessDenied"] == {"reader": 1}


def test_faults_hit_function_sessions_only(gatekeeper: Gatekeeper) -> None:
    session = bootstrap(gatekeeper)
    local(gatekeeper, "/_local/faults", {"rate": 1.0, "seed": 1})
    reader = client(gatekeeper, "dynamodb", **session)
    reader.get_item(TableName="orders", Key={"id": {"S": "1"}})  # not registered: never faulted
    local(gatekeeper, "/_local/sessions", {"accessKeyId": session["key"], "kind": "poller", "label": "fn"})
    reader.get_item(TableName="orders", Key={"id": {"S": "1"}})  # a poller: never faulted
    local(gatekeeper, "/_local/sessions", {"accessKeyId": session["key"], "kind": "function", "label": "fn"})
    with pytest.raises(ClientError) as faulted:
        reader.get_item(TableName="orders", Key={"id": {"S": "1"}})
    assert faulted.value.response["Error"]["Code"] in {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailable",
    }
    client(gatekeeper, "dynamodb").get_item(TableName="orders", Key={"id": {"S": "1"}})  # the runner: never
    stats = local(gatekeeper, "/_local/stats")
    assert stats["awsFaultsInjected"] == 1 and stats["iamEnforced"]


def test_before_enforcement_nothing_is_refused_and_every_call_is_counted(gatekeeper: Gatekeeper) -> None:
    stranger = client(gatekeeper, "dynamodb", key="AKIAWHOEVER", secret="x")
    assert stranger.list_tables()["TableNames"] == []
    assert local(gatekeeper, "/_local/calls") == {"dynamodb:ListTables": 1}
    assert local(gatekeeper, "/_local/calls", {}) == {}  # POST resets


def test_the_lambda_invoke_api_is_screened_through_authorize(gatekeeper: Gatekeeper) -> None:
    session = bootstrap(gatekeeper)
    captured: list[Any] = []
    invoker = boto3.session.Session(
        aws_access_key_id=session["key"],
        aws_secret_access_key=session["secret"],
        aws_session_token=session["token"],
        region_name=REGION,
    ).client("lambda", endpoint_url="http://127.0.0.1:9999", config=Config(retries={"total_max_attempts": 1}))

    def capture(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, HeadersDict({}), _Raw(b"{}"))

    invoker.meta.events.register("before-send", capture)
    invoker.invoke(FunctionName="gateway", Payload=b"{}")
    request = captured[0]
    import base64

    verdict = local(
        gatekeeper,
        "/_local/authorize",
        {
            "method": "POST",
            "path": "/2015-03-31/functions/gateway/invocations",
            "headers": {
                "Host": "127.0.0.1:9999",
                **{k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
            },
            "body": base64.b64encode(request.body or b"").decode(),
            "action": "lambda:InvokeFunction",
            "resource": f"arn:aws:lambda:{REGION}:123456789012:function:gateway",
        },
    )
    assert verdict["refused"] and verdict["status"] == 403
    assert ["x-amzn-ErrorType", "AccessDeniedException"] in verdict["headers"]
    # A request missing a header it signed cannot match its signature: refused, not a crash.
    unsigned_host = {
        "method": "POST",
        "path": "/2015-03-31/functions/gateway/invocations",
        "headers": {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
        "body": base64.b64encode(request.body or b"").decode(),
        "action": "lambda:InvokeFunction",
        "resource": f"arn:aws:lambda:{REGION}:123456789012:function:gateway",
    }
    verdict = local(gatekeeper, "/_local/authorize", unsigned_host)
    assert ["x-amzn-ErrorType", "InvalidSignatureException"] in verdict["headers"]


def test_the_dispatcher_computes_each_hosts_backend_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatcher = caching_dispatcher()
    calls: list[str] = []
    original = DomainDispatcherApplication.get_backend_for_host

    def counting(self: Any, host: str | None) -> Any:
        calls.append(str(host))
        return original(self, host)

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", counting)
    first = dispatcher.get_backend_for_host("dynamodb.ap-northeast-2.amazonaws.com")
    again = dispatcher.get_backend_for_host("dynamodb.ap-northeast-2.amazonaws.com")
    assert first == again == "dynamodb" and calls == ["dynamodb.ap-northeast-2.amazonaws.com"]
    assert dispatcher.get_backend_for_host(None) is None


def test_the_cpu_each_kind_of_call_costs_is_measured(gatekeeper: Gatekeeper) -> None:
    runner = client(gatekeeper, "dynamodb")
    for _ in range(3):
        runner.list_tables()
    cpu = local(gatekeeper, "/_local/cpu")
    assert cpu["dynamodb:ListTables"]["calls"] == 3 and cpu["dynamodb:ListTables"]["cpuMs"] > 0
    assert local(gatekeeper, "/_local/cpu", {}) == {}
