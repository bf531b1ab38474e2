"""The example policies, built directly as domain objects.

`example_policy` is deploy/policy.example.yaml (Slack and Vault only); `oncall_example_policy`
is deploy/policy.oncall.example.yaml, the same with approvers from PagerDuty and a Slack user
group.
"""

from dataclasses import replace
from datetime import timedelta

from bot.domain.rules import (
    INCIDENT_COMMANDER,
    AccessPolicy,
    BreakGlassTerms,
    DynamicGroup,
    GroupSource,
    IncidentRules,
    ResourceRule,
    VaultTarget,
)

ONCALL = ("U0ONCALL1", "U0ONCALL2")
LEADS = ("U0LEAD1", "U0LEAD2", "U0LEAD3")
SECURITY = ("U0SEC1", "U0SEC2")
ADMIN = "U0ADMIN1"
EVERYONE = (*ONCALL, *LEADS, *SECURITY, ADMIN, "U0OUTSIDER")
ML_PRIMARY = DynamicGroup("ml-primary", GroupSource.PAGERDUTY_SCHEDULE, "P7ML0NC")
PLATFORM_LEADS = DynamicGroup("platform-leads", GroupSource.SLACK_USERGROUP, "S0PLATLEAD")


def oncall_example_policy() -> AccessPolicy:
    return AccessPolicy(
        incident=IncidentRules(
            channel_prefix="inc",
            admin_groups=("incident-admins",),
            request_timeout=timedelta(minutes=30),
            reminder_after=timedelta(minutes=10),
            archive_on_close=True,
        ),
        groups={
            "ml-oncall": frozenset(ONCALL),
            "ml-leads": frozenset(LEADS),
            "security": frozenset(SECURITY),
            "incident-admins": frozenset({ADMIN}),
        },
        dynamic_groups={"ml-primary": ML_PRIMARY, "platform-leads": PLATFORM_LEADS},
        resources={
            "inference-logs-ro": ResourceRule(
                name="inference-logs-ro",
                description="Read-only, PII-masked view of model inference logs",
                vault=VaultTarget(path="database/creds/inference-logs-ro"),
                default_ttl=timedelta(hours=1),
                max_ttl=timedelta(hours=4),
                requester_groups=("ml-oncall",),
                approver_groups=("ml-leads",),
                approvals_required=1,
                auto_approve_oncall="ml-primary",
            ),
            "feature-store-rw": ResourceRule(
                name="feature-store-rw",
                description="Write access to the online feature store",
                vault=VaultTarget(path="database/creds/feature-store-rw"),
                default_ttl=timedelta(minutes=30),
                max_ttl=timedelta(hours=2),
                requester_groups=("ml-oncall",),
                approver_groups=("ml-leads", "security"),
                approvals_required=2,
            ),
            "serving-cluster-exec": ResourceRule(
                name="serving-cluster-exec",
                description="kubectl exec into model-serving pods",
                vault=VaultTarget(token_policies=("ml-serving-exec",)),
                default_ttl=timedelta(minutes=30),
                max_ttl=timedelta(hours=1),
                requester_groups=("ml-oncall",),
                approver_groups=("ml-leads", "platform-leads", INCIDENT_COMMANDER),
                approvals_required=1,
                break_glass=BreakGlassTerms(max_ttl=timedelta(minutes=15)),
            ),
        },
    )


def example_policy() -> AccessPolicy:
    """The on-call example without its PagerDuty and Slack user groups."""
    oncall = oncall_example_policy()
    resources = oncall.resources
    return replace(
        oncall,
        dynamic_groups={},
        resources={
            **resources,
            "inference-logs-ro": replace(resources["inference-logs-ro"], auto_approve_oncall=None),
            "serving-cluster-exec": replace(
                resources["serving-cluster-exec"],
                approver_groups=("ml-leads", INCIDENT_COMMANDER),
            ),
        },
    )
