"""What happens around each use case: the services decide and record, the notifier shows it.

Run after the ack, on the app's worker pool. Every function here is safe to call twice for the
same click or retry: the services make the second call a no-op or a clear refusal. Cards, thread
replies and outcomes are not posted here but by the Slack notifier (`notifier.py`), which
follows the audit chain: `Deps.notify` after each change asks it to catch up now.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from bot import metrics
from bot.domain.access import AccessRequest, RequestState, Verdict
from bot.domain.backoff import retry_wait
from bot.domain.channel_name import incident_channel_name
from bot.domain.eligibility import Resolution
from bot.domain.errors import (
    ChannelNameTaken,
    ChatError,
    ChatUnavailable,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from bot.domain.grant import Grant
from bot.domain.incident import MAX_TITLE, Incident, Severity
from bot.domain.ports import (
    ChatGateway,
    CredentialBroker,
    Directory,
    IssuedCredential,
    OnCall,
    UnitOfWorkFactory,
)
from bot.domain.rules import AccessPolicy, Delivery
from bot.domain.text import required_text
from bot.services import access, eligibility, incidents, issuing, recovery
from bot.services.crashpoints import crash_point
from bot.services.event_stream import StreamFollower
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import incident as incident_blocks
from bot.slack.metadata import MetadataSeal
from bot.slack.notifier import SlackNotifier

MAX_NAME_ATTEMPTS = 20
# A credential Slack could not take is offered again after these pauses (see `_hand_over`).
HAND_OVER_RETRY = timedelta(seconds=2)
HAND_OVER_LONGEST_WAIT = timedelta(seconds=30)
log = structlog.get_logger(__name__)


@dataclass
class Deps:
    """Everything a workflow needs, built once by the composition root."""

    uow: UnitOfWorkFactory
    policy: AccessPolicy
    broker: CredentialBroker
    chat: ChatGateway
    clock: Callable[[], datetime]
    vault_addr: str | None = None
    directory: Directory | None = None  # Slack user groups
    oncall: OnCall | None = None  # PagerDuty; None when not configured
    # Called with (request id, end) when a grant's end is set or changes: the expiry timers'
    # `schedule_expiry` when the bot runs its scheduler.
    schedule_expiry: Callable[[str, datetime], None] = field(default=lambda _request, _end: None)
    # Signs the forms' private metadata. The composition root derives it from a configured
    # secret so every replica checks what another signed; a random key serves one process.
    seal: MetadataSeal = field(default_factory=lambda: MetadataSeal(secrets.token_bytes(32)))
    # Follows the audit chain and shows it in Slack; built from the fields above by default.
    follower: StreamFollower | None = None
    # How a worker waits before trying Slack again (tests pass one that does not sleep).
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.follower is None:
            notifier = SlackNotifier(uow=self.uow, chat=self.chat, policy=self.policy)
            self.follower = StreamFollower(uow=self.uow, handler=notifier, clock=self.clock)

    def notify(self, *, wait: bool = False) -> None:
        """Show in Slack what has been recorded and not shown yet. Never raises: what is left
        (Slack down, another worker busy) is shown by the next call or the timer."""
        assert self.follower is not None
        try:
            self.follower.follow(wait=wait)
        except Exception:
            log.exception("notifications not shown; the timer tries again")

    def notify_through(self) -> bool:
        """Show in Slack everything recorded so far, waiting for other workers; False when
        some of it is not shown yet (Slack failing, or the notifier backing off after it did)."""
        assert self.follower is not None
        try:
            return self.follower.follow_through()
        except Exception:
            log.exception("notifications not shown; the timer tries again")
            return False


def open_incident(deps: Deps, *, title: str, severity: Severity, opener: str) -> Incident:
    """Create `inc-YYYYMMDD-<slug>` (`-2`, `-3`… when taken), record it, card, pin, topic."""
    # Refused before any channel exists: a title nobody can see must not leave a channel behind.
    title = required_text(title, field="title", max_length=MAX_TITLE)
    now = deps.clock()
    channel_id = channel_name = ""
    for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
        channel_name = incident_channel_name(
            deps.policy.incident.channel_prefix, title, now, attempt
        )
        try:
            channel_id = deps.chat.create_channel(channel_name)
            break
        except ChannelNameTaken:
            continue
    else:
        raise ChatError(f"Every channel name up to {channel_name} is taken; pick another title.")
    incident = incidents.start_incident(
        uow=deps.uow,
        title=title,
        severity=severity,
        opened_by=opener,
        channel_id=channel_id,
        channel_name=channel_name,
        now=now,
    )
    deps.chat.invite(channel_id, [opener])
    deps.chat.set_topic(channel_id, incident_blocks.topic(incident))
    text, blocks = incident_blocks.incident_card(incident)
    card_ts = deps.chat.post(channel_id, text=text, blocks=blocks)
    deps.chat.pin(channel_id, card_ts)
    incidents.attach_incident_card(uow=deps.uow, incident_id=incident.id, card_ts=card_ts)
    log.info("incident opened", incident_id=incident.id, channel=channel_name, user=opener)
    return incident


def hand_off(deps: Deps, *, channel_id: str, to_user: str, by_user: str) -> None:
    """Make `to_user` the commander: only a person who can act (not a bot, not deactivated),
    or the incident would be left to an admin to close."""
    incident = incident_of_channel(deps, channel_id)
    if deps.directory is not None and not deps.directory.is_active_human(to_user):
        raise InvalidInput(
            f"<@{to_user}> cannot be the commander: name an active member of the workspace "
            "(not a bot, an app or a deactivated account)."
        )
    previous = incident.commander_id
    incident = incidents.hand_off_incident(
        uow=deps.uow,
        policy=deps.policy,
        incident_id=incident.id,
        to_user=to_user,
        by_user=by_user,
        now=deps.clock(),
    )
    deps.chat.invite(channel_id, [to_user])  # a commander outside the channel could not see it
    deps.chat.set_topic(channel_id, incident_blocks.topic(incident))
    refresh_incident_card(deps, incident)
    deps.chat.post(channel_id, text=incident_blocks.handed_off(incident, previous, by_user))


def file_request(
    deps: Deps,
    *,
    channel_id: str,
    user: str,
    resource: str,
    duration: str | None,
    reason: str,
    break_glass: bool = False,
) -> str:
    """File the request, then post its card and issue what on-call approved at once."""
    filed = record_filing(
        deps,
        channel_id=channel_id,
        user=user,
        resource=resource,
        duration=duration,
        reason=reason,
        break_glass=break_glass,
    )
    after_filing(deps, filed)
    return filed.request.id


@dataclass(frozen=True)
class Filed:
    """A request just committed, and what the lookup of its dynamic groups found."""

    request: AccessRequest
    found: Resolution


def needs_lookups(deps: Deps, resource: str) -> bool:
    """Filing this resource asks Slack or PagerDuty who is in its dynamic groups first."""
    rule = deps.policy.resources.get(resource.strip())
    return rule is not None and bool(deps.policy.dynamic_groups_of(rule))


def record_filing(
    deps: Deps,
    *,
    channel_id: str,
    user: str,
    resource: str,
    duration: str | None,
    reason: str,
    break_glass: bool = False,
) -> Filed:
    """Look dynamic groups up (only a resource that has some asks Slack or PagerDuty), then
    commit the request in one short transaction. Its card is the notifier's to post, now or,
    when Slack is down, as soon as Slack answers."""
    rule = deps.policy.resource(resource.strip())
    found = eligibility.resolve_groups(
        policy=deps.policy,
        rule=rule,
        requester_id=user,
        directory=deps.directory,
        oncall=deps.oncall,
    )
    try:
        request = access.request_access(
            uow=deps.uow,
            policy=deps.policy,
            channel_id=channel_id,
            requester_id=user,
            resource=resource,
            duration=duration,
            reason=reason,
            now=deps.clock(),
            resolution=found,
            break_glass=break_glass,
        )
    except NotAllowed as refused:
        raise NotAllowed(access_blocks.with_lookup_notes(refused.message, found.notes)) from None
    log.info(
        "request filed",
        incident_id=request.incident_id,
        request_id=request.id,
        resource=request.resource,
        user=user,
        break_glass=request.break_glass,
    )
    return Filed(request, found)


def after_filing(deps: Deps, filed: Filed) -> bool:
    """Show the new request (its card, failed lookups and any on-call approval, in its
    thread); issue at once when on-call approved it. False when Slack did not show the card
    yet (it is posted as soon as Slack answers).

    Break-glass: the card is the loud announcement, and the credential is issued at once."""
    request = filed.request
    count_outcome(request)
    if request.break_glass:
        metrics.BREAK_GLASS.labels(request.resource, "used").inc()
    deps.notify(wait=True)
    shown = access.get_request(uow=deps.uow, request_id=request.id).card_ts is not None
    if request.state is RequestState.APPROVED:
        issue_and_deliver(deps, request_id=request.id)
    return shown


def decide(
    deps: Deps, *, request_id: str, approver: str, verdict: Verdict, reason: str | None
) -> None:
    after_decision(
        deps,
        record_decision(
            deps, request_id=request_id, approver=approver, verdict=verdict, reason=reason
        ),
    )


def record_decision(
    deps: Deps, *, request_id: str, approver: str, verdict: Verdict, reason: str | None
) -> access.DecisionResult:
    """Commit the decision: one short transaction, no Slack and no Vault, so it can run before
    Slack is answered and a click acknowledged is a click kept."""
    result = access.decide_request(
        uow=deps.uow,
        request_id=request_id,
        approver_id=approver,
        verdict=verdict,
        reason=reason,
        now=deps.clock(),
    )
    log.info(
        "request decided",
        incident_id=result.request.incident_id,
        request_id=result.request.id,
        verdict=verdict.value,
        user=approver,
        state=result.request.state.value,
    )
    return result


def after_decision(deps: Deps, result: access.DecisionResult) -> None:
    """What a recorded decision sets off: issuing, the card, the requester. A stop before it
    ends is finished by the sweep (an approval nobody issued is issued after a short wait)."""
    request_id = result.request.id
    if result.approved and not result.request.break_glass:
        deps.notify()  # "approved, issuing…" while Vault is asked
        count_outcome(result.request)
        waited = (result.decision.decided_at - result.request.requested_at).total_seconds()
        metrics.TIME_TO_APPROVAL.labels(result.request.resource).observe(waited)
        issue_and_deliver(deps, request_id=request_id)
        return
    if result.request.state is RequestState.DENIED and not result.request.break_glass:
        count_outcome(result.request)
    elif result.request.break_glass:
        _after_review(deps, result)
    deps.notify()


def _after_review(deps: Deps, result: access.DecisionResult) -> None:
    """A decision on break-glass access: a deny revokes it now and tells the channel."""
    if result.newly_reviewed:
        metrics.BREAK_GLASS.labels(result.request.resource, "reviewed").inc()
    if result.revoke_grant_id is not None:
        issuing.revoke_grant(
            uow=deps.uow, broker=deps.broker, grant_id=result.revoke_grant_id, clock=deps.clock
        )
    if result.decision.verdict is Verdict.DENY:
        metrics.BREAK_GLASS.labels(result.request.resource, "denied").inc()
        count_outcome(access.get_request(uow=deps.uow, request_id=result.request.id))


def issue_and_deliver(deps: Deps, *, request_id: str, wait: bool = True) -> None:
    """Issue the credential and hand it to the requester privately; report in the thread.

    Under the request's claim, so recovery never takes a delivery in progress for a lost one;
    without `wait`, a request another worker holds is left to it, and the credential is offered
    to Slack once (the sweep calls it so, and must not stop behind a Slack outage).
    """
    with recovery.hold_request(uow=deps.uow, request_id=request_id, wait=wait) as mine:
        if not mine:
            return
        result = issuing.issue_access(
            uow=deps.uow,
            policy=deps.policy,
            broker=deps.broker,
            request_id=request_id,
            clock=deps.clock,
            wait=wait,
            track_delivery=True,
        )
        if result.credential is not None or result.error:
            _deliver(deps, result, patient=wait)


def _deliver(deps: Deps, result: issuing.IssueResult, *, patient: bool) -> None:
    request_id = result.request.id
    with bound_contextvars(incident_id=result.request.incident_id, request_id=request_id):
        _deliver_in_context(deps, result, patient=patient)


def _deliver_in_context(deps: Deps, result: issuing.IssueResult, *, patient: bool) -> None:
    request_id = result.request.id
    if result.error:
        log.warning("credential not issued", error=result.error, retrying=result.retrying)
    elif result.credential is not None and result.grant is not None:
        log.info(
            "credential issued",
            grant_id=result.grant.id,
            token_accessor=result.grant.token_accessor,
            lease_id=result.grant.lease_id,
        )
    if result.credential is not None or result.request.state is RequestState.FAILED:
        count_outcome(result.request)
    if result.credential is not None and result.request.activated_at is not None:
        waited = (result.request.activated_at - result.request.requested_at).total_seconds()
        metrics.TIME_TO_CREDENTIAL.labels(result.request.resource).observe(waited)
    if result.credential is not None and result.request.ends_at is not None:
        deps.schedule_expiry(request_id, result.request.ends_at)
    if result.credential is not None and result.grant is not None:
        incident = incident_of_request(deps, request_id)
        rule = deps.policy.resource(result.request.resource)
        text, blocks = access_blocks.delivery(
            result.credential,
            rule,
            request_id=request_id,
            vault_addr=deps.vault_addr,
            now=deps.clock(),
            extendable=not result.request.break_glass,
        )
        handed = _hand_over(
            deps,
            request_id=request_id,
            requester=result.request.requester_id,
            channel=incident.channel_id,
            message=(text, blocks),
            with_dm=rule.delivery is Delivery.WRAPPED,  # ephemerals vanish
            until=_worth_until(result.credential) if patient else deps.clock(),
        )
        if handed:
            issuing.record_delivery(
                uow=deps.uow, request_id=request_id, grant_id=result.grant.id, now=deps.clock()
            )
            crash_point("issue.slack_posted")
    deps.notify()


def _worth_until(credential: IssuedCredential) -> datetime:
    """Until when handing the credential over is any use: its wrapping token's end, else its
    own."""
    return credential.wrapping_expires_at or credential.expires_at


def _hand_over(
    deps: Deps,
    *,
    request_id: str,
    requester: str,
    channel: str,
    message: tuple[str, list[dict[str, Any]]],
    with_dm: bool,
    until: datetime,
) -> bool:
    """Give the requester the credential privately: an ephemeral, and a DM too when asked.

    The credential exists only in this worker's memory, so while Slack is unavailable it is
    offered again (2 s, doubling, at most 30 s apart), each message sent once, under the
    request's claim that keeps recovery from ending the access as never delivered. It stops
    when the access has ended meanwhile (False: its own event tells the requester) and gives
    up, raising, when the next try would come after `until` (the credential of no use by
    then, or a caller that cannot wait)."""
    text, blocks = message
    steps = [lambda: deps.chat.post_ephemeral(channel, requester, text=text, blocks=blocks)]
    if with_dm:
        steps.append(lambda: deps.chat.send_dm(requester, text=text, blocks=blocks))
    failures = 0
    while steps:
        try:
            steps[0]()
        except ChatUnavailable:
            failures += 1
            pause = retry_wait(failures, first=HAND_OVER_RETRY, longest=HAND_OVER_LONGEST_WAIT)
            if deps.clock() + pause >= until:
                raise
            log.warning(
                "credential not handed over yet: Slack is unavailable",
                retry_in_seconds=pause.total_seconds(),
            )
            deps.sleep(pause.total_seconds())
            now = access.get_request(uow=deps.uow, request_id=request_id)
            if now.state is not RequestState.ACTIVE or not now.awaiting_delivery:
                return False
            continue
        steps.pop(0)
    return True


def count_outcome(request: AccessRequest) -> None:
    metrics.REQUESTS.labels(request.resource, request.state.value).inc()


def incident_of_channel(deps: Deps, channel_id: str) -> Incident:
    incident = incidents.find_incident_for_channel(uow=deps.uow, channel_id=channel_id)
    if incident is None:
        raise NotFound("This is not an incident channel: run this in the incident's channel.")
    return incident


def incident_of_request(deps: Deps, request_id: str) -> Incident:
    return incidents.incident_for_request(uow=deps.uow, request_id=request_id)


def refresh_incident_card(deps: Deps, incident: Incident) -> None:
    if incident.card_ts:
        text, blocks = incident_blocks.incident_card(incident)
        deps.chat.update(incident.channel_id, incident.card_ts, text=text, blocks=blocks)


def cancel(deps: Deps, *, request_id: str, user: str) -> None:
    after_cancel(deps, record_cancel(deps, request_id=request_id, user=user))


def record_cancel(deps: Deps, *, request_id: str, user: str) -> AccessRequest:
    """Commit the cancel: one short transaction, before Slack is told it happened."""
    return access.cancel_request(
        uow=deps.uow, request_id=request_id, by_user=user, now=deps.clock()
    )


def after_cancel(deps: Deps, request: AccessRequest) -> None:
    count_outcome(request)
    deps.notify()


def revoke(deps: Deps, *, request_id: str, user: str) -> None:
    with recovery.hold_request(uow=deps.uow, request_id=request_id) as mine:
        mine.ensure_held()  # never revoke without it, even when waiting for it timed out
        access.revoke_access(
            uow=deps.uow,
            policy=deps.policy,
            broker=deps.broker,
            request_id=request_id,
            by_user=user,
            clock=deps.clock,
        )
        count_outcome(access.get_request(uow=deps.uow, request_id=request_id))
    deps.notify()


def record_revoke(deps: Deps, *, request_id: str, user: str) -> Grant | None:
    """Commit the end of access, before Slack is told it happened: the grant to revoke in
    Vault, or None when another worker holds the request (issuing or delivering it), in which
    case nothing is recorded and `revoke` waits for that worker instead."""
    with recovery.hold_request(uow=deps.uow, request_id=request_id, wait=False) as mine:
        if not mine:
            return None
        return access.record_revocation(
            uow=deps.uow,
            policy=deps.policy,
            request_id=request_id,
            by_user=user,
            now=deps.clock(),
        )


def after_revoke(deps: Deps, *, request_id: str, grant_id: str) -> None:
    """Vault revokes; the notifier tells the card and the requester. Whatever a stop leaves
    undone, the sweep finishes (revocations retried), and the notifier says it once."""
    deps.notify()
    with recovery.hold_request(uow=deps.uow, request_id=request_id):
        issuing.revoke_grant(uow=deps.uow, broker=deps.broker, grant_id=grant_id, clock=deps.clock)
        count_outcome(access.get_request(uow=deps.uow, request_id=request_id))
    deps.notify()


def tell_privately(deps: Deps, user: str, text: str, channel: str | None = None) -> None:
    """An ephemeral in `channel` when there is one and the user is in it, else a DM."""
    if channel:
        try:
            deps.chat.post_ephemeral(channel, user, text=text)
            return
        except ChatError:
            pass  # e.g. not in the channel: fall back to a DM, so the message is not lost
    deps.chat.send_dm(user, text=text)
