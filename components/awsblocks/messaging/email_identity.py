"""`EmailIdentity`: an SES sender identity a function may be granted to send as (`send_grant()`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from awsblocks.core import EMAIL_ADDRESS, SID_UNSAFE, Component, ComponentArgs
from awsblocks.security.iam import (
    Grant,
)

SES_SEND_ACTIONS: tuple[str, ...] = ("ses:SendEmail", "ses:SendRawEmail")


@dataclass
class EmailIdentityArgs(ComponentArgs):
    """Arguments of `EmailIdentity`.

    Attributes:
        email: The sender address. AWS emails it a verification link; until it is verified
            (and while the account is in the SES sandbox) sending fails.
        tags: Tags for the identity (the component adds `component`).
    """

    email: str
    tags: Mapping[str, str] = field(default_factory=dict)


class EmailIdentity(Component):
    """An SES email identity; `identity.send_grant()` lets a function send as it. Outputs: `arn`, `email`."""

    arn: pulumi.Output[str]
    email: str

    def __init__(
        self, name: str, args: EmailIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if not EMAIL_ADDRESS.match(args.email):
            raise ValueError(f"EmailIdentity {name}: email={args.email!r}; allowed: an email address")
        super().__init__("EmailIdentity", name, args.tags, opts, name_prefix=args.name_prefix)
        identity = aws.sesv2.EmailIdentity(
            f"{name}-identity", email_identity=args.email, tags=self.named_tags(name), opts=self.child_opts()
        )
        self.arn = identity.arn
        self.email = args.email
        self.register_outputs({"arn": identity.arn, "email": args.email})

    def send_grant(self) -> Grant:
        """The grant to send email as this identity (and nothing else)."""
        return Grant(
            "SESSendAs" + SID_UNSAFE.sub("", self.component_name.title()), SES_SEND_ACTIONS, (self.arn,)
        )
