"""`UserPool`: a Cognito user pool and a public app client whose tokens an API verifies.

- Sign-in by email, verified by email; account recovery by verified email only.
- Password policy: at least 12 characters with lower case, upper case, digits and symbols;
  temporary passwords expire.
- MFA: "OFF", "OPTIONAL" or "ON", with TOTP (software token) as the factor.
- The app client is public (a browser or a CLI holds no secret): no client secret, SRP and
  refresh-token flows only; `USER_PASSWORD_AUTH` only when `allow_password_auth` says so (a
  local token helper needs it). Token lifetimes are arguments; revocation is on and
  "user does not exist" errors are hidden.
- Outputs the pool id, client id, the token issuer and the JWKS URL an API verifies against.

Example::

    users = UserPool("users", UserPoolArgs(mfa="ON", deletion_protection=True))
    pulumi.export("issuer", users.issuer)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component, ComponentArgs

MfaMode = Literal["OFF", "OPTIONAL", "ON"]
MFA_MODES: tuple[str, ...] = ("OFF", "OPTIONAL", "ON")
MIN_PASSWORD_LENGTH = 12
BASE_AUTH_FLOWS = ("ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH")
PASSWORD_AUTH_FLOW = "ALLOW_USER_PASSWORD_AUTH"


@dataclass
class UserPoolArgs(ComponentArgs):
    """Arguments of `UserPool`.

    Attributes:
        mfa: "OFF", "OPTIONAL" (users may enrol TOTP) or "ON" (every user must). Default "OPTIONAL".
        password_min_length: Minimum password length, 12 to 99. Default 12. Every character
            class is always required.
        temporary_password_validity_days: Days an admin-issued temporary password lasts, 1 to 365.
            Default 3.
        self_sign_up: Users may sign themselves up (False: administrators create users). Default True.
        allow_password_auth: Also allow the USER_PASSWORD_AUTH flow (the password travels to
            Cognito over TLS instead of SRP). Default False; turn on only for local tooling.
        access_token_validity_minutes: Access token lifetime, 5 to 1440. Default 60.
        id_token_validity_minutes: ID token lifetime, 5 to 1440. Default 60.
        refresh_token_validity_days: Refresh token lifetime, 1 to 3650. Default 30.
        deletion_protection: Refuse to delete the pool while it is ACTIVE. Default False.
        tags: Tags for the pool (the component adds `component`).
    """

    mfa: MfaMode = "OPTIONAL"
    password_min_length: int = MIN_PASSWORD_LENGTH
    temporary_password_validity_days: int = 3
    self_sign_up: bool = True
    allow_password_auth: bool = False
    access_token_validity_minutes: int = 60
    id_token_validity_minutes: int = 60
    refresh_token_validity_days: int = 30
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def validate_user_pool_args(name: str, args: UserPoolArgs) -> None:
    """Raise ValueError naming the argument, the value given and what is allowed."""
    where = f"UserPool {name}"
    if args.mfa not in MFA_MODES:
        raise ValueError(f"{where}: mfa={args.mfa!r}; allowed: {', '.join(MFA_MODES)}")
    checks = (
        ("password_min_length", args.password_min_length, MIN_PASSWORD_LENGTH, 99),
        ("temporary_password_validity_days", args.temporary_password_validity_days, 1, 365),
        ("access_token_validity_minutes", args.access_token_validity_minutes, 5, 1440),
        ("id_token_validity_minutes", args.id_token_validity_minutes, 5, 1440),
        ("refresh_token_validity_days", args.refresh_token_validity_days, 1, 3650),
    )
    for argument, value, low, high in checks:
        if not low <= value <= high:
            raise ValueError(f"{where}: {argument}={value}; allowed: {low} to {high}")


def auth_flows(allow_password_auth: bool) -> list[str]:
    """The app client's explicit auth flows: SRP and refresh, plus password auth when asked for."""
    flows = list(BASE_AUTH_FLOWS)
    if allow_password_auth:
        flows.append(PASSWORD_AUTH_FLOW)
    return sorted(flows)


class UserPool(Component):
    """Cognito user pool plus a public app client. See the module docstring.

    Outputs: `user_pool_id`, `user_pool_arn`, `client_id`, `issuer`, `jwks_url`.
    """

    user_pool_id: pulumi.Output[str]
    user_pool_arn: pulumi.Output[str]
    client_id: pulumi.Output[str]
    issuer: pulumi.Output[str]
    jwks_url: pulumi.Output[str]

    def __init__(self, name: str, args: UserPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate_user_pool_args(name, args)
        super().__init__("UserPool", name, args.tags, opts, name_prefix=args.name_prefix)
        pool = aws.cognito.UserPool(
            f"{name}-pool",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            username_configuration=aws.cognito.UserPoolUsernameConfigurationArgs(case_sensitive=False),
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=args.password_min_length,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=args.temporary_password_validity_days,
            ),
            mfa_configuration=args.mfa,
            software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(
                enabled=True
            )
            if args.mfa != "OFF"
            else None,
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                        name="verified_email", priority=1
                    )
                ]
            ),
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=not args.self_sign_up
            ),
            deletion_protection="ACTIVE" if args.deletion_protection else "INACTIVE",
            tags=self.named_tags(f"{name}-pool"),
            opts=self.child_opts(),
        )
        client = aws.cognito.UserPoolClient(
            f"{name}-client",
            user_pool_id=pool.id,
            generate_secret=False,
            explicit_auth_flows=auth_flows(args.allow_password_auth),
            access_token_validity=args.access_token_validity_minutes,
            id_token_validity=args.id_token_validity_minutes,
            refresh_token_validity=args.refresh_token_validity_days,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                access_token="minutes", id_token="minutes", refresh_token="days"
            ),
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            supported_identity_providers=["COGNITO"],
            opts=self.child_opts(),
        )
        self.user_pool_id = pool.id
        self.user_pool_arn = pool.arn
        self.client_id = client.id
        self.issuer = pool.endpoint.apply(lambda endpoint: f"https://{endpoint}")
        self.jwks_url = self.issuer.apply(lambda issuer: f"{issuer}/.well-known/jwks.json")
        self.register_outputs(
            {
                "user_pool_id": pool.id,
                "user_pool_arn": pool.arn,
                "client_id": client.id,
                "issuer": self.issuer,
                "jwks_url": self.jwks_url,
            }
        )
