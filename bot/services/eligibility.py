"""Dynamic groups at request time: look them up, then settle on-call auto-approval.

`resolve_groups` runs before the request's transaction (it calls Slack and PagerDuty); its
`Resolution` is snapshotted onto the request, so later decisions never depend on a live lookup.
A lookup that fails leaves its group empty and says why: nobody is auto-approved on an error,
and the request waits for its approvers as usual.
"""

from datetime import datetime

from bot.domain import events
from bot.domain.access import AccessRequest
from bot.domain.eligibility import Resolution, auto_approval
from bot.domain.errors import ChatError, OnCallUnavailable
from bot.domain.oncall import OnCallShift
from bot.domain.ports import Directory, OnCall, UnitOfWork
from bot.domain.rules import AccessPolicy, DynamicGroup, ResourceRule
from bot.services.common import about_request

PAGERDUTY_NOT_CONFIGURED = "PagerDuty is not configured (GATEHOUSE_PAGERDUTY_TOKEN is not set)"
SLACK_NOT_CONNECTED = "Slack user groups cannot be read without a Slack connection"


def resolve_groups(
    *,
    policy: AccessPolicy,
    rule: ResourceRule,
    requester_id: str,
    directory: Directory | None,
    oncall: OnCall | None,
) -> Resolution:
    """Members of the resource's dynamic groups now, and the requester's on-call shift."""
    members: dict[str, frozenset[str]] = {}
    labels: dict[str, str] = {}
    notes: list[str] = []
    shift: OnCallShift | None = None
    oncall_error: str | None = None
    pagerduty_failed: str | None = None  # one failure is enough: no second wait per request
    for group in policy.dynamic_groups_of(rule):
        try:
            if group.is_pagerduty:
                labels[group.name] = f"on call in {group.name}"
                if pagerduty_failed:
                    raise OnCallUnavailable(pagerduty_failed)
                found, mine = _on_call_members(group, rule, requester_id, oncall)
                members[group.name] = found
                if group.name == rule.auto_approve_oncall:
                    shift = mine
            else:
                usergroup = _require_directory(directory).usergroup(group.ref)
                labels[group.name] = f"@{usergroup.handle}"
                members[group.name] = usergroup.members
        except (ChatError, OnCallUnavailable) as error:
            if isinstance(error, OnCallUnavailable):
                pagerduty_failed = error.message
            members[group.name] = frozenset()
            notes.append(
                f"{group.name} ({group.describe()}) could not be looked up: {error.message}"
            )
            if group.name == rule.auto_approve_oncall:
                oncall_error = error.message
    return Resolution(members, labels, shift, oncall_error, tuple(notes))


def _on_call_members(
    group: DynamicGroup, rule: ResourceRule, requester_id: str, oncall: OnCall | None
) -> tuple[frozenset[str], OnCallShift | None]:
    """Everyone on call when the group approves; the requester's own shift when it matters."""
    if oncall is None:
        raise OnCallUnavailable(PAGERDUTY_NOT_CONFIGURED)
    found: set[str] = set()
    if group.name in rule.approver_groups:
        found |= oncall.users_on_call(group)
    shift = None
    if group.name in rule.requester_groups or group.name == rule.auto_approve_oncall:
        shift = oncall.shift_of(requester_id, group)
        if shift is not None:
            found.add(requester_id)
    return frozenset(found), shift


def _require_directory(directory: Directory | None) -> Directory:
    if directory is None:
        raise ChatError(SLACK_NOT_CONNECTED)
    return directory


def settle_on_call(
    tx: UnitOfWork,
    request: AccessRequest,
    *,
    rule: ResourceRule,
    policy: AccessPolicy,
    resolution: Resolution,
    now: datetime,
) -> None:
    """Audit every failed lookup; approve at once a requester on call in the auto-approve group.

    Runs in the filing transaction, after the request is added and its filing recorded. The
    request is then APPROVED like any other, and issued through the same path.
    """
    for note in resolution.notes:
        tx.audit.append(
            events.GroupLookupFailed(**about_request(request), at=now, actor=None, error=note)
        )
    answer = auto_approval(policy, rule, resolution, request.requester_id)
    if not answer.yes or resolution.shift is None:
        return
    group = policy.dynamic_groups[str(rule.auto_approve_oncall)]
    request.approve_automatically(because=answer.because, now=now)
    tx.requests.save(request)
    shift = resolution.shift
    tx.audit.append(
        events.AutoApproved(
            **about_request(request),
            at=now,
            actor=None,
            group=group.name,
            source=group.source.value,
            ref=group.ref,
            because=answer.because,
            pagerduty_user_id=shift.pagerduty_user_id,
            escalation_policy_id=shift.escalation_policy_id,
            escalation_level=shift.escalation_level,
            schedule_id=shift.schedule_id,
            start=shift.start,
            end=shift.end,
        )
    )
    tx.audit.append(
        events.RequestApproved(**about_request(request), at=now, actor=None, automatic=True)
    )
