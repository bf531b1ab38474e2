"""Who may request, who may approve, and who is approved automatically, once the dynamic groups
of a request are known.

The services look the groups up when a request is filed (Slack user groups, PagerDuty on-call)
and pass the result here as a `Resolution`; `gatehouse policy test` builds one from the facts a
test states. Either way the same rules below decide.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.oncall import OnCallShift
from bot.domain.rules import INCIDENT_COMMANDER, AccessPolicy, DynamicGroup, ResourceRule

COMMANDER_LABEL = "incident commander"


@dataclass(frozen=True)
class Resolution:
    """The dynamic groups of one request as looked up, and what could not be looked up."""

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # group name -> `@handle`, ...
    shift: OnCallShift | None = None  # the requester on call in the auto-approve group
    oncall_error: str | None = None  # why on-call could not be checked for auto-approval
    notes: tuple[str, ...] = ()  # every failed lookup, in words (for operators)
    failed: tuple[DynamicGroup, ...] = ()  # the groups those notes are about, in order


@dataclass(frozen=True)
class Answer:
    yes: bool
    because: str


def policy_for_request(
    policy: AccessPolicy, resolution: Resolution, *, commander_id: str | None
) -> AccessPolicy:
    """`policy` with the dynamic groups as looked up and the incident's commander filled in."""
    looked_up = dict(resolution.members)
    looked_up[INCIDENT_COMMANDER] = frozenset({commander_id}) if commander_id else frozenset()
    return policy.with_members(looked_up)


def labelled_approvers(
    policy_now: AccessPolicy, rule: ResourceRule, resolution: Resolution, *, requester_id: str
) -> dict[str, frozenset[str]]:
    """The approver groups the card names: dynamic groups by label, and the commander."""
    labelled: dict[str, frozenset[str]] = {}
    for name in rule.approver_groups:
        members = policy_now.members([name]) - {requester_id}
        if name == INCIDENT_COMMANDER and members:
            labelled[COMMANDER_LABEL] = members
        elif name in resolution.labels:
            labelled[resolution.labels[name]] = members
    return labelled


def may_request(policy_now: AccessPolicy, rule: ResourceRule, user: str) -> Answer:
    groups = [name for name in rule.requester_groups if user in policy_now.members([name])]
    if groups:
        return Answer(True, f"member of {', '.join(groups)}")
    return Answer(False, f"not a member of {', '.join(rule.requester_groups)}")


def approvers_for(policy_now: AccessPolicy, rule: ResourceRule, requester: str) -> frozenset[str]:
    """Who may approve a request `requester` files: never the requester."""
    return policy_now.approvers(rule) - {requester}


def may_approve(
    policy_now: AccessPolicy, rule: ResourceRule, user: str, *, requester: str
) -> Answer:
    if user == requester:
        return Answer(False, "nobody approves their own request")
    groups = [name for name in rule.approver_groups if user in policy_now.members([name])]
    if groups:
        return Answer(True, f"counts as {', '.join(groups)}")
    return Answer(False, f"not in {', '.join(rule.approver_groups)}")


def auto_approval(
    policy_now: AccessPolicy, rule: ResourceRule, resolution: Resolution, requester: str
) -> Answer:
    """Approved without waiting only when the requester may request and PagerDuty said, without
    error, that they are on call in the resource's auto-approve group right now."""
    name = rule.auto_approve_oncall
    if name is None:
        return Answer(False, f"{rule.name} has no on-call auto-approval")
    group = policy_now.dynamic_groups.get(name)
    where = f"{name} ({group.describe()})" if group else name
    if not may_request(policy_now, rule, requester).yes:
        return Answer(False, f"{requester} may not request {rule.name}")
    if resolution.oncall_error:
        return Answer(False, f"on-call could not be checked: {resolution.oncall_error}")
    shift = resolution.shift
    if shift is None or shift.user_id != requester:
        return Answer(False, f"not on call in {where}")
    details = f": {shift.describe()}" if shift.pagerduty_user_id else ""
    return Answer(True, f"on call in {where}{details}")


def may_offer(policy: AccessPolicy, rule: ResourceRule, user: str) -> bool:
    """Whether the request form offers `rule` to `user`: they are a listed member of one of
    its requester groups, or one of those groups is looked up only when a request is filed
    (a Slack user group, on call in PagerDuty), where the filing decides."""
    if policy.can_request(user, rule):
        return True
    return any(name in policy.dynamic_groups for name in rule.requester_groups)
