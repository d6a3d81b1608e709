"""The AWS emulator: moto in server mode on 127.0.0.1, in its own process, behind a gatekeeper.

Run as `python -m toolchain.embedded.emulator --port 4566`. Every request passes the `Gatekeeper` WSGI
middleware before moto sees it, which:

1. counts it by `service:Action` (the benchmark's "AWS API calls per captured payment");
2. once IAM is enforced, authenticates the caller (moto's own SigV4 check and credential
   lookup: an IAM user's access key or an STS assumed-role session) and authorizes every
   permission AWS would check for it (`access.required_permissions`: the table, index, queue,
   topic, identity or pool ARN, Transact*/Batch* expanded) against the caller's identity
   policies with moto's policy classes. A denial is answered exactly as AWS answers it for that
   protocol (AccessDeniedException JSON, AuthorizationError/AccessDenied XML);
3. with `AWS_FAULT_RATE`, fails a seeded share of the calls made by function and API sessions as
   AWS fails them (throttling, 5xx), in the request's protocol (`faults.AwsFaults`).

moto's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`) stays off: it checks most services
against the resource "*", so it denies every call a least-privilege policy allows on a named
ARN (tests/infra/test_local_access.py shows it). The gatekeeper uses moto's classes instead.

Local endpoints (never counted, never enforced; 127.0.0.1 only):
- `GET /_local/calls` (POST resets): calls served by `service:Action`;
- `GET /_local/cpu` (POST resets): per `service:Action`, calls and the CPU moto spent on them;
- `POST /_local/auth` `{"enforce": true}`: creates the runner's admin identity (IAM user
  `local-runner` with the well-known local access key) and turns enforcement on;
- `POST /_local/sessions` `{"accessKeyId", "kind", "label"}`: what an assumed-role session is
  for (`function`, `api`, `poller`): faults apply to `function` and `api` sessions only;
- `POST /_local/faults` `{"rate", "seed"}`;
- `POST /_local/authorize`: the same screening for a request another local server received
  (the Lambda Invoke API), answered with the rendered denial or fault, if any;
- `GET /_local/stats`: faults injected, denials per role, whether IAM is enforced;
- `GET /_local/iam`: per role its current policies, what it used and what it was denied.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from toolchain.embedded.access import (
    DEFAULT_ACCOUNT,
    AccessLog,
    AuthenticationFailure,
    Decision,
    MotoIdentities,
    Permission,
    Principal,
    evaluate,
    policy_text,
    required_permissions,
)
from toolchain.embedded.awswire import (
    Rendered,
    WireRequest,
    access_denied,
    invalid_credentials,
    load_models,
    parse_request,
    render_error,
)
from toolchain.embedded.faults import FAULTED_SESSION_KINDS, AwsFaults

LOOPBACK = "127.0.0.1"
LOCAL_PREFIX = "/_local/"
CALLS_PATH = "/_local/calls"
CPU_PATH = "/_local/cpu"
LOCAL_ACCESS_KEY = "local"
"""The runner's access key (and secret): IAM user `local-runner`, administrator, once enforced."""
RUNNER_USER = "local-runner"
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
PUBLIC_OPERATIONS = frozenset(
    {"InitiateAuth", "RespondToAuthChallenge", "SignUp", "ConfirmSignUp", "ForgotPassword", "GetId"}
)
"""Operations AWS serves unsigned (Cognito sign-in): never screened."""


@dataclass(frozen=True)
class Session:
    """What an assumed-role session is for."""

    kind: str
    """`function`, `api`, `poller` (or `runner`)."""
    label: str
    """The function's name, or the API's task family."""


class MotoResources:
    """The emulator's resources as the permission rules need them (moto's backends, in-process)."""

    def __init__(self, account: str = DEFAULT_ACCOUNT) -> None:
        self.account = account

    def _key_arn(self, key_id: str, region: str) -> str | None:
        if not key_id:
            return None
        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id
        try:
            from moto.kms.models import kms_backends

            raw = kms_backends[self.account][region].any_id_to_key_id(key_id)
        except Exception:  # an alias that does not exist: the service would fail, not IAM
            return None
        return f"arn:aws:kms:{region}:{self.account}:key/{raw}"

    def queue_key(self, queue_arn: str) -> str | None:
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, name = queue_arn.split(":", 5)
        try:
            queue = sqs_backends[account][region].get_queue(name)
        except Exception:
            return None
        return self._key_arn(str(getattr(queue, "kms_master_key_id", "") or ""), region)

    def topic_key(self, topic_arn: str) -> str | None:
        from moto.sns.models import sns_backends

        _, _, _, region, account, _ = topic_arn.split(":", 5)
        topic = sns_backends[account][region].topics.get(topic_arn)
        if topic is None:
            return None
        return self._key_arn(str(getattr(topic, "kms_master_key_id", "") or ""), region)

    def ses_identity(self, address: str, region: str) -> str:
        from moto.ses.models import ses_backends

        try:
            identities = ses_backends[self.account][region].email_identities
        except Exception:
            return address
        domain = address.split("@", 1)[-1]
        if address not in identities and domain in identities:
            return domain
        return address


def ensure_runner_identity(account: str = DEFAULT_ACCOUNT) -> str:
    """IAM user `local-runner`, administrator, whose access key is the local tools' key."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    if RUNNER_USER not in backend.users:
        backend.create_user("us-east-1", RUNNER_USER)
        backend.put_user_policy(RUNNER_USER, "administrator", ADMIN_POLICY)
        key = backend.create_access_key(RUNNER_USER)
        backend.access_keys.pop(key.physical_resource_id, None)
        # The local tools (make token, make demo, tests) all sign with this fixed key.
        key.access_key_id = LOCAL_ACCESS_KEY
        key.secret_access_key = LOCAL_ACCESS_KEY
        backend.access_keys[key.physical_resource_id] = key
    return backend.users[RUNNER_USER].arn


def role_policies(account: str = DEFAULT_ACCOUNT) -> dict[str, list[str]]:
    """Every role's identity policies as moto holds them now (inline and attached)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    roles: dict[str, list[str]] = {}
    for role in backend.roles.values():
        documents = [policy_text(doc) for doc in role.policies.values()]
        documents += [policy_text(policy) for policy in role.managed_policies.values()]
        roles[role.name] = documents
    return roles


def _json_response(start_response: Callable[..., Any], payload: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Gatekeeper:
    """WSGI middleware in front of moto: counts, authenticates, authorizes, injects faults."""

    def __init__(self, app: Callable[..., Iterable[bytes]], account: str = DEFAULT_ACCOUNT) -> None:
        self.app = app
        self.account = account
        self.calls: Counter[str] = Counter()
        self.cpu: defaultdict[str, float] = defaultdict(float)
        """Seconds of CPU moto spent serving each `service:Action` (where the emulator's time goes)."""
        self.lock = threading.Lock()
        self.enforcing = False
        self.sessions: dict[str, Session] = {LOCAL_ACCESS_KEY: Session("runner", RUNNER_USER)}
        self.faults = AwsFaults()
        self.access = AccessLog()
        self.identities = MotoIdentities(account)
        self.resources = MotoResources(account)
        self.unclassified: Counter[str] = Counter()

    # --- the screening both the middleware and /_local/authorize use --------------------------

    def screen(
        self,
        request: WireRequest,
        method: str,
        path: str,
        query: str,
        headers: Any,
        body: bytes,
        permissions: list[Permission] | None = None,
    ) -> Rendered | None:
        """A rendered refusal (denial, bad credentials, injected fault) or None to serve the call."""
        if not request.access_key or request.operation in PUBLIC_OPERATIONS:
            return None  # unsigned (Cognito sign-in, the JWKS document): nothing to authorize
        if self.enforcing:
            try:
                principal, documents = self.identities.authenticate(
                    method, path, query, headers, body, request.region, request.operation
                )
            except AuthenticationFailure as failure:
                return render_error(request, invalid_credentials(request, failure.reason))
            if permissions is None:
                permissions = required_permissions(request, self.account, self.resources)
            if not request.operation:
                with self.lock:
                    self.unclassified[request.name] += 1
            refusal = self._authorize(request, principal, documents, permissions)
            if refusal is not None:
                return refusal
        session = self.sessions.get(request.access_key)
        if session is not None and session.kind in FAULTED_SESSION_KINDS:
            fault = self.faults.draw(request.service, request.protocol)
            if fault is not None:
                return render_error(request, fault)
        return None

    def _authorize(
        self, request: WireRequest, principal: Principal, documents: list[str], permissions: list[Permission]
    ) -> Rendered | None:
        for permission in permissions:
            decision = evaluate(documents, permission)
            if decision is not Decision.ALLOWED:
                self.access.record(principal.label, permissions, permission)
                error = access_denied(
                    request,
                    principal.arn,
                    permission.action,
                    permission.resource,
                    explicit=decision is Decision.EXPLICIT_DENY,
                    kms=permission.kms,
                )
                return render_error(request, error)
        self.access.record(principal.label, permissions, None)
        return None

    # --- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if path.startswith(LOCAL_PREFIX):
            return self._local(environ, path, body, start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        from werkzeug.datastructures import EnvironHeaders

        headers = EnvironHeaders(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        query = environ.get("QUERY_STRING", "")
        raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or path).split("?", 1)[0]
        request = parse_request(method, path, query, headers, body)
        name = request.name if request.operation else _fallback_name(request, method, path)
        with self.lock:
            self.calls[name] += 1
        refusal = self.screen(request, method, raw_path, query, headers, body)
        if refusal is not None:
            status, response_headers, payload = refusal
            response_headers = [*response_headers, ("Content-Length", str(len(payload)))]
            start_response(_status_line(status), response_headers)
            return [payload]
        started = time.thread_time()
        served = list(self.app(environ, start_response))
        spent = time.thread_time() - started
        with self.lock:
            self.cpu[name] += spent
        return served

    def _local(
        self, environ: dict[str, Any], path: str, body: bytes, start_response: Callable[..., Any]
    ) -> list[bytes]:
        post = environ.get("REQUEST_METHOD") == "POST"
        data: dict[str, Any] = json.loads(body) if post and body.strip() else {}
        if path.startswith(CPU_PATH):
            with self.lock:
                if post:
                    self.cpu.clear()
                return _json_response(
                    start_response,
                    {
                        k: {"calls": self.calls[k], "cpuMs": round(v * 1000, 1)}
                        for k, v in sorted(self.cpu.items(), key=lambda item: -item[1])
                    },
                )
        if path.startswith(CALLS_PATH):
            with self.lock:
                if post:
                    self.calls.clear()
                    self.cpu.clear()
                return _json_response(start_response, dict(self.calls))
        if path == "/_local/auth":
            if post:
                if data.get("enforce"):
                    ensure_runner_identity(self.account)
                self.enforcing = bool(data.get("enforce"))
            return _json_response(start_response, {"enforcing": self.enforcing, "runner": RUNNER_USER})
        if path == "/_local/sessions" and post:
            session = Session(str(data["kind"]), str(data.get("label", "")))
            with self.lock:
                self.sessions[str(data["accessKeyId"])] = session
            return _json_response(start_response, {"registered": data["accessKeyId"]})
        if path == "/_local/faults" and post:
            try:
                self.faults.configure(float(data.get("rate", 0.0)), int(data.get("seed", 0)))
            except ValueError as exc:
                return _json_response(start_response, {"error": str(exc)}, "400 Bad Request")
            return _json_response(start_response, {"rate": self.faults.rate, "seed": self.faults.seed})
        if path == "/_local/authorize" and post:
            return _json_response(start_response, self._authorize_for_peer(data))
        if path == "/_local/stats":
            return _json_response(start_response, self.stats())
        if path == "/_local/iam":
            return _json_response(start_response, self.iam())
        return _json_response(start_response, {"error": f"unknown local path {path}"}, "404 Not Found")

    def _authorize_for_peer(self, data: dict[str, Any]) -> dict[str, Any]:
        """Screen a request another local server (the Lambda Invoke API) received."""
        from werkzeug.datastructures import Headers

        headers = Headers(list(data.get("headers", {}).items()))
        body = base64.b64decode(data.get("body", ""))
        method = str(data.get("method", "POST"))
        path = str(data.get("path", "/"))
        query = str(data.get("query", ""))
        request = parse_request(method, path, query, headers, body)
        permissions = None
        if data.get("action") and data.get("resource"):
            permissions = [Permission(str(data["action"]), str(data["resource"]))]
        refusal = self.screen(request, method, path, query, headers, body, permissions)
        if refusal is None:
            return {"refused": False}
        status, response_headers, payload = refusal
        return {
            "refused": True,
            "status": status,
            "headers": response_headers,
            "body": base64.b64encode(payload).decode(),
        }

    def stats(self) -> dict[str, Any]:
        """Faults injected, denials per role, enforcement."""
        return {
            "iamEnforced": self.enforcing,
            "awsFaultsInjected": self.faults.total,
            "awsFaultsByCode": dict(self.faults.injected),
            "accessDenied": self.access.denials(),
            "unclassifiedCalls": dict(self.unclassified),
        }

    def iam(self) -> dict[str, Any]:
        """Per role: current policies, used and denied (action → resource → count); sessions."""
        usage = self.access.to_json()
        roles: dict[str, Any] = {}
        for role, documents in role_policies(self.account).items():
            roles[role] = {"policies": documents, **usage.get(role, {"used": {}, "denied": {}})}
        with self.lock:
            sessions = {
                key: vars(session) for key, session in self.sessions.items() if key != LOCAL_ACCESS_KEY
            }
        return {"enforcing": self.enforcing, "roles": roles, "sessions": sessions}


def _fallback_name(request: WireRequest, method: str, path: str) -> str:
    return f"{request.service or 'unknown'}:{method} {path}"


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def caching_dispatcher() -> Any:
    """moto's host → service dispatcher, remembering each host's service.

    moto matches every request's inferred host against hundreds of URL patterns, under a lock;
    the answer for a host never changes, so it is computed once per host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class CachingDispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host is None:
                return None
            if host not in self._backends:  # callers hold self.lock
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    return CachingDispatcher()


PRELOADED_SERVICES = (
    "dynamodb",
    "sqs",
    "sns",
    "iam",
    "sts",
    "kms",
    "cognito-idp",
    "ses",
    "sesv2",
    "cloudwatch",
)
"""The services the local mocks create resources with: their moto backends are loaded in the
background as the emulator starts, instead of on each one's first call during the deployment."""


def preload(dispatcher: Any, region: str = "", services: tuple[str, ...] = PRELOADED_SERVICES) -> None:
    """Ahead of each service's first call: import its moto backend, build its application, create
    its backend for `region`, read its botocore model (the gatekeeper parses requests with it)."""
    from moto.backends import get_backend

    for service in services:
        if service not in dispatcher.app_instances:
            try:
                app = dispatcher.create_app(service)
            except Exception:  # a service this moto lacks: its first call will say so
                continue
            with dispatcher.lock:
                dispatcher.app_instances.setdefault(service, app)
        with contextlib.suppress(Exception):
            backends = get_backend(service)[DEFAULT_ACCOUNT]  # type: ignore[call-overload]
            backends["aws" if service in ("iam", "sts") else region or "us-east-1"]
        load_models((service,))
        with contextlib.suppress(Exception):  # the model moto parses this service's requests with
            from moto.core.utils import get_service_model

            get_service_model(service)


def serve(port: int, region: str = "") -> None:
    """Serve moto on 127.0.0.1:`port` until killed."""
    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    # One access-log line per AWS call costs the emulator CPU every call; its errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from toolchain.embedded import moto_fidelity

    moto_fidelity.apply()  # atomic conditional writes and transactions, as in DynamoDB
    dispatcher = caching_dispatcher()
    app = Gatekeeper(dispatcher)
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=preload, args=(dispatcher, region), daemon=True, name="preload").start()
    print(f"emulator: moto listening on http://{LOOPBACK}:{port}", flush=True)
    server.serve_forever()


_LOADER: list[Any] = []
_LOADER_LOCK = threading.Lock()


def boto3_session(
    region: str, access_key_id: str, secret_access_key: str, session_token: str | None = None
) -> Any:
    """A boto3 session with these credentials, sharing one botocore data loader with every other
    session this process makes: a fresh session would read botocore's endpoint and service
    files from disk again (about half a second of CPU each)."""
    import boto3
    import botocore.loaders
    import botocore.session

    with _LOADER_LOCK:
        if not _LOADER:
            _LOADER.append(botocore.loaders.create_loader())
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER[0])
    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        region_name=region,
        botocore_session=core,
    )


def emulator_session(region: str) -> Any:
    """A boto3 session with the runner's local credentials (clients from it still need the endpoint)."""
    return boto3_session(region, LOCAL_ACCESS_KEY, LOCAL_ACCESS_KEY)


def emulator_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client bound to the emulator, as the runner."""
    return emulator_session(region).client(service, endpoint_url=endpoint_url)


def emulator_resource(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 resource (e.g. DynamoDB tables) bound to the emulator, as the runner."""
    return emulator_session(region).resource(service, endpoint_url=endpoint_url)


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Block until the emulator answers, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{CALLS_PATH}", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise TimeoutError(f"the AWS emulator at {url} did not answer within {timeout:.0f}s")


def local_call(url: str, path: str, payload: Any = None, timeout: float = 10.0) -> Any:
    """GET (or POST `payload` as JSON to) one of the emulator's /_local endpoints."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method="POST" if data is not None else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def read_calls(url: str, reset: bool = False) -> Counter[str]:
    """AWS API calls served so far by `service:Action` (optionally resetting the count)."""
    return Counter(local_call(url, CALLS_PATH, {} if reset else None, timeout=5))


def main(argv: list[str]) -> int:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--region", default="", help="the region whose backends to prepare at start")
    parser.add_argument("--parent", type=int, default=0, help="end when this process (the runner) ends")
    args = parser.parse_args(argv)
    if args.parent:
        from toolchain.embedded.zygote import watch_parent

        watch_parent(args.parent)
    serve(args.port, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
