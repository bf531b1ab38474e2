"""Dynamic groups at request time: look them up, then settle on-call auto-approval.

`resolve_groups` runs before the request's transaction (it calls Slack and PagerDuty); its
`Resolution` is snapshotted onto the request, so later decisions never depend on a live lookup.
A lookup that fails, or does not answer within the caller's budget, leaves its group empty and
says why: nobody is auto-approved on an error, and the request waits for its approvers as usual.
"""

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
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
    budget: float | None = None,
) -> Resolution:
    """Members of the resource's dynamic groups now, and the requester's on-call shift.

    With a `budget` (seconds), the lookups run side by side and whatever has not answered
    when it is spent counts as a failed lookup: the caller is answering Slack, whose ack
    cannot wait for a slow PagerDuty or Slack API. The late lookups finish (or time out) on
    their own threads and are ignored.
    """
    groups = policy.dynamic_groups_of(rule)

    def look_up(group: DynamicGroup) -> _Found:
        return _look_up(group, rule, requester_id, directory, oncall)

    outcomes = _one_by_one(groups, look_up) if budget is None else _within(groups, look_up, budget)
    members: dict[str, frozenset[str]] = {}
    labels: dict[str, str] = {}
    notes: list[str] = []
    failed: list[DynamicGroup] = []
    shift: OnCallShift | None = None
    oncall_error: str | None = None
    for group in groups:
        outcome = outcomes[group.name]
        if group.is_pagerduty:
            labels[group.name] = f"on call in {group.name}"
        if isinstance(outcome, _Found):
            members[group.name] = outcome.members
            if outcome.label is not None:
                labels[group.name] = outcome.label
            if group.name == rule.auto_approve_oncall:
                shift = outcome.shift
            continue
        members[group.name] = frozenset()
        failed.append(group)
        in_time = " in time" if outcome.late else ""
        notes.append(
            f"{group.name} ({group.describe()}) could not be looked up{in_time}: {outcome.why}"
        )
        if group.name == rule.auto_approve_oncall:
            oncall_error = outcome.why
    return Resolution(members, labels, shift, oncall_error, tuple(notes), tuple(failed))


@dataclass(frozen=True)
class _Found:
    """What one group's lookup found: its members, its label when the lookup names it, and
    the requester's shift when the group is PagerDuty's."""

    members: frozenset[str]
    label: str | None = None
    shift: OnCallShift | None = None


@dataclass(frozen=True)
class _Failed:
    """Why a group's lookup found nothing; `late` when it did not answer within the budget."""

    why: str
    late: bool = False


_Outcome = _Found | _Failed


def _look_up(
    group: DynamicGroup,
    rule: ResourceRule,
    requester_id: str,
    directory: Directory | None,
    oncall: OnCall | None,
) -> _Found:
    if group.is_pagerduty:
        found, mine = _on_call_members(group, rule, requester_id, oncall)
        return _Found(found, shift=mine)
    usergroup = _require_directory(directory).usergroup(group.ref)
    return _Found(usergroup.members, label=f"@{usergroup.handle}")


def _one_by_one(
    groups: Sequence[DynamicGroup], look_up: Callable[[DynamicGroup], _Found]
) -> dict[str, _Outcome]:
    """Each group in turn; after one PagerDuty failure the others are not asked (one wait
    per request is enough)."""
    outcomes: dict[str, _Outcome] = {}
    pagerduty_failed: str | None = None
    for group in groups:
        try:
            if group.is_pagerduty and pagerduty_failed:
                raise OnCallUnavailable(pagerduty_failed)
            outcomes[group.name] = look_up(group)
        except (ChatError, OnCallUnavailable) as error:
            if isinstance(error, OnCallUnavailable):
                pagerduty_failed = error.message
            outcomes[group.name] = _Failed(error.message)
    return outcomes


def _within(
    groups: Sequence[DynamicGroup], look_up: Callable[[DynamicGroup], _Found], budget: float
) -> dict[str, _Outcome]:
    """Every group at once, for at most `budget` seconds in all."""
    if not groups:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="group-lookup")
    try:
        # Each lookup in a copy of the caller's context: its log lines keep what is bound.
        futures = {
            group.name: pool.submit(contextvars.copy_context().run, look_up, group)
            for group in groups
        }
        wait(futures.values(), timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    outcomes: dict[str, _Outcome] = {}
    for name, future in futures.items():
        if not future.done():
            outcomes[name] = _Failed(f"no answer within {budget:g} s", late=True)
            continue
        error = future.exception()
        if isinstance(error, ChatError | OnCallUnavailable):
            outcomes[name] = _Failed(error.message)
        elif error is not None:
            raise error
        else:
            outcomes[name] = future.result()
    return outcomes


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


def members_now(
    *, policy: AccessPolicy, group: str, directory: Directory | None, oncall: OnCall | None
) -> frozenset[str]:
    """Who is in a policy group right now: its listed members, or looked up (a Slack user
    group's members, whoever is on call). Raises ChatError or OnCallUnavailable."""
    dynamic = policy.dynamic_groups.get(group)
    if dynamic is None:
        return policy.members([group])
    if dynamic.is_pagerduty:
        if oncall is None:
            raise OnCallUnavailable(PAGERDUTY_NOT_CONFIGURED)
        return oncall.users_on_call(dynamic)
    return _require_directory(directory).usergroup(dynamic.ref).members


def source_of(policy: AccessPolicy, group: str) -> str:
    """Where a group's members come from: `members`, or its dynamic source."""
    dynamic = policy.dynamic_groups.get(group)
    return "members" if dynamic is None else dynamic.source.value


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
