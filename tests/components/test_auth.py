"""The UserPool component: password policy, MFA, public client flows, token lifetimes, outputs."""

from __future__ import annotations

from typing import Any

import pytest
from awsblocks.auth.user_pool import UserPool, UserPoolArgs, auth_flows
from awsblocks.testing import DeclaredResource, Synthesis

from tests.conftest import TEST_REGION, SynthFn

POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"


def users(synth: SynthFn, **kwargs: Any) -> Synthesis:
    return synth(program=lambda: UserPool("users", UserPoolArgs(**kwargs)))


def only(s: Synthesis, token: str) -> DeclaredResource:
    (resource,) = s.of_type(token)
    return resource


def test_defaults_strong_passwords_optional_totp_public_client_srp_only(synth: SynthFn) -> None:
    s = users(synth)
    pool = only(s, POOL).inputs
    assert pool["passwordPolicy"] == {
        "minimumLength": 12,
        "requireLowercase": True,
        "requireUppercase": True,
        "requireNumbers": True,
        "requireSymbols": True,
        "temporaryPasswordValidityDays": 3,
    }
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert pool["deletionProtection"] == "INACTIVE"
    assert pool["usernameAttributes"] == ["email"] and pool["autoVerifiedAttributes"] == ["email"]
    client = only(s, CLIENT).inputs
    assert client["generateSecret"] is False
    assert client["explicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert client["preventUserExistenceErrors"] == "ENABLED"
    assert client["enableTokenRevocation"] is True
    assert (client["accessTokenValidity"], client["idTokenValidity"], client["refreshTokenValidity"]) == (
        60,
        60,
        30,
    )
    assert client["tokenValidityUnits"] == {
        "accessToken": "minutes",
        "idToken": "minutes",
        "refreshToken": "days",
    }
    assert client["userPoolId"] == only(s, POOL).id


def test_production_settings_mfa_on_protected_short_tokens(synth: SynthFn) -> None:
    s = users(
        synth, mfa="ON", deletion_protection=True, access_token_validity_minutes=15, password_min_length=16
    )
    pool = only(s, POOL).inputs
    assert pool["mfaConfiguration"] == "ON" and pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert pool["deletionProtection"] == "ACTIVE"
    assert pool["passwordPolicy"]["minimumLength"] == 16
    assert only(s, CLIENT).inputs["accessTokenValidity"] == 15


def test_mfa_off_has_no_totp_and_password_auth_only_when_asked(synth: SynthFn) -> None:
    s = users(synth, mfa="OFF", allow_password_auth=True)
    assert only(s, POOL).inputs["mfaConfiguration"] == "OFF"
    assert "softwareTokenMfaConfiguration" not in only(s, POOL).inputs
    assert "ALLOW_USER_PASSWORD_AUTH" in only(s, CLIENT).inputs["explicitAuthFlows"]
    assert "ALLOW_USER_PASSWORD_AUTH" not in auth_flows(False)


def test_outputs_issuer_and_jwks_url_from_the_pool(synth: SynthFn) -> None:
    s = users(synth)
    component = next(r for r in s.resources if r.type == "awsblocks:index:UserPool")
    pool_id = only(s, POOL).id
    issuer = f"https://cognito-idp.{TEST_REGION}.amazonaws.com/{pool_id}"
    assert component.outputs["user_pool_id"] == pool_id
    assert component.outputs["issuer"] == issuer
    assert component.outputs["jwks_url"] == f"{issuer}/.well-known/jwks.json"
    assert component.outputs["client_id"] == only(s, CLIENT).id
    assert {r.urn for r in s.descendants(component)} == {r.urn for r in s.resources if r is not component}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mfa": "REQUIRED"}, r"mfa='REQUIRED'; allowed: OFF, OPTIONAL, ON"),
        ({"password_min_length": 8}, r"password_min_length=8; allowed: 12 to 99"),
        ({"access_token_validity_minutes": 2}, r"access_token_validity_minutes=2; allowed: 5 to 1440"),
        ({"refresh_token_validity_days": 0}, r"refresh_token_validity_days=0; allowed: 1 to 3650"),
    ],
)
def test_bad_arguments_fail_at_declaration(synth: SynthFn, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        users(synth, **kwargs)
