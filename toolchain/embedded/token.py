"""`make token USER=<name>`: a bearer token for a local user of the running system.

Creates the user in the emulator's Cognito pool on first use (with a generated password kept
in `.run/users.json`), signs in with the app client and prints the token the API verifies.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from toolchain.embedded.emulator import emulator_client
from toolchain.embedded.system import STATE_FILE

USERS_FILE = STATE_FILE.parent / "users.json"
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


class NotRunning(RuntimeError):
    """No local system is running (no state file)."""


def read_state(path: Path = STATE_FILE) -> dict[str, Any]:
    """The running system's state file, or a clear error."""
    if not path.exists():
        raise NotRunning("no local system is running: start it with `make run` (in another terminal)")
    return dict(json.loads(path.read_text()))


def issue_token(user: str, state: dict[str, Any], users_file: Path = USERS_FILE) -> str:
    """Sign `user` in (creating them first if needed) and return their access token."""
    if not _USERNAME.match(user):
        raise ValueError(f"USER={user!r} is not a valid user name: use 1-64 letters, digits, '.', '_' or '-'")
    cognito = emulator_client("cognito-idp", state["emulator"], state["region"])
    pool_id, client_id = state["userPoolId"], state["clientId"]
    # The pool signs users in by email address; each local user gets one on example.com.
    username = user if "@" in user else f"{user}@example.com"
    users: dict[str, str] = json.loads(users_file.read_text()) if users_file.exists() else {}
    key = f"{pool_id}/{user}"
    password = users.get(key)
    if password is None:
        password = "Lx1!" + secrets.token_urlsafe(18)
        with contextlib.suppress(cognito.exceptions.UsernameExistsException):
            cognito.admin_create_user(
                UserPoolId=pool_id,
                Username=username,
                MessageAction="SUPPRESS",
                UserAttributes=[
                    {"Name": "email", "Value": username},
                    {"Name": "email_verified", "Value": "true"},
                ],
            )
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password=password, Permanent=True
        )
        users[key] = password
        users_file.parent.mkdir(parents=True, exist_ok=True)
        users_file.write_text(json.dumps(users, indent=2))
    result = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return str(result["AccessToken"])


def main(argv: list[str]) -> int:
    """CLI entry: prints the token alone on stdout."""
    if len(argv) != 1 or not argv[0]:
        print("usage: make token USER=<name>", file=sys.stderr)
        return 2
    try:
        print(issue_token(argv[0], read_state()))
    except (NotRunning, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
