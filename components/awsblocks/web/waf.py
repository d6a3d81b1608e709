"""The optional WAF in front of a `WebService`'s load balancer: AWS managed rule groups, a per-IP
rate limit, and logs to an encrypted `aws-waf-logs-…` log group. `WebServiceArgs.waf` turns it on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from awsblocks.core import Component

DEFAULT_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")


@dataclass(frozen=True)
class WafArgs:
    """Arguments of the optional WAF in front of the load balancer.

    Attributes:
        rate_limit: Requests one client IP may send in `rate_window_seconds` before it is
            blocked. Default 1000.
        rate_window_seconds: The rate rule's evaluation window: 60, 120, 300 or 600. Default 300.
        managed_rule_groups: AWS managed rule groups (vendor AWS) evaluated in order. Default the
            common rule set and known bad inputs.
        log_retention_days: Retention of the `aws-waf-logs-…` log group. Default 30.
    """

    rate_limit: int = 1000
    rate_window_seconds: int = 300
    managed_rule_groups: Sequence[str] = DEFAULT_MANAGED_RULE_GROUPS
    log_retention_days: int = 30


def validate_waf_args(where: str, waf: WafArgs) -> None:
    if not 10 <= waf.rate_limit <= 2_000_000_000:
        raise ValueError(f"{where}: waf.rate_limit={waf.rate_limit}; allowed: 10 to 2000000000")
    if waf.rate_window_seconds not in (60, 120, 300, 600):
        raise ValueError(
            f"{where}: waf.rate_window_seconds={waf.rate_window_seconds}; allowed: 60, 120, 300, 600"
        )
    if not waf.managed_rule_groups:
        raise ValueError(f"{where}: waf.managed_rule_groups is empty; allowed: one or more AWS rule groups")


def declare_waf(
    owner: Component, name: str, waf: WafArgs, alb: aws.lb.LoadBalancer, kms_key_arn: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The web ACL in front of `alb` (AWS managed rules, a per-IP rate limit) with its log group;
    its children belong to `owner`, which names its metrics (`owner.name_prefix` + `name`)."""
    metric_prefix = f"{owner.name_prefix}{name}"

    def visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
        return aws.wafv2.WebAclRuleVisibilityConfigArgs(
            cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
        )

    rules = [
        aws.wafv2.WebAclRuleArgs(
            name=group,
            priority=index,
            override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
            ),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    name=group, vendor_name="AWS"
                )
            ),
            visibility_config=visibility(f"{metric_prefix}-{group}"),
        )
        for index, group in enumerate(waf.managed_rule_groups)
    ]
    rules.append(
        aws.wafv2.WebAclRuleArgs(
            name="rate-limit-per-ip",
            priority=len(rules),
            action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                    limit=waf.rate_limit,
                    aggregate_key_type="IP",
                    evaluation_window_sec=waf.rate_window_seconds,
                )
            ),
            visibility_config=visibility(f"{metric_prefix}-rate-limit"),
        )
    )
    acl = aws.wafv2.WebAcl(
        f"{name}-waf",
        scope="REGIONAL",
        description=f"{name}: AWS managed rules and a per-IP rate limit",
        default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
        rules=rules,
        visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
            cloudwatch_metrics_enabled=True, metric_name=metric_prefix, sampled_requests_enabled=True
        ),
        tags=owner.named_tags(f"{name}-waf"),
        opts=owner.child_opts(),
    )
    aws.wafv2.WebAclAssociation(
        f"{name}-waf-association", resource_arn=alb.arn, web_acl_arn=acl.arn, opts=owner.child_opts()
    )
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-waf-logs",
        name=f"aws-waf-logs-{metric_prefix}",
        retention_in_days=waf.log_retention_days,
        kms_key_id=kms_key_arn,
        tags=owner.named_tags(f"{name}-waf-logs"),
        opts=owner.child_opts(),
    )
    aws.wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logging",
        resource_arn=acl.arn,
        log_destination_configs=[log_group.arn],
        opts=owner.child_opts(),
    )
    return acl.arn
