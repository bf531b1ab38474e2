"""What happens around each use case: the services decide and record, the notifier shows it.

Run after the ack, on the app's worker pool. Every function here is safe to call twice for the
same click or retry: the services make the second call a no-op or a clear refusal. Cards, thread
replies and outcomes are not posted here but by the Slack notifier (`notifier.py`), and
revocations are not asked of Vault here but by the Vault effects (`effects.py`): both follow the
audit chain, and `Deps.notify` after each change asks them to catch up now.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from bot import metrics
from bot.app.deps import Deps
from bot.domain import eligibility as eligibility_rules
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
    OnCallUnavailable,
)
from bot.domain.grant import Grant
from bot.domain.incident import MAX_TITLE, Incident, Severity
from bot.domain.ports import IssuedCredential, PrivateMessage
from bot.domain.rules import Delivery, ResourceRule
from bot.domain.text import required_text
from bot.domain.wording import Person, Wording
from bot.services import access, eligibility, incidents, issuing, recovery
from bot.services.crashpoints import crash_point

MAX_NAME_ATTEMPTS = 20
# A credential Slack could not take is offered again after these pauses (see `_hand_over`).
HAND_OVER_RETRY = timedelta(seconds=2)
HAND_OVER_LONGEST_WAIT = timedelta(seconds=30)
log = structlog.get_logger(__name__)


def open_incident(deps: Deps, *, title: str, severity: Severity, opener: str) -> Incident:
    """Record the incident, then make `inc-YYYYMMDD-<slug>` (`-2`, `-3`… when taken) and
    attach it, then invite, topic, card, pin.

    The row comes first: a failing insert leaves no channel behind, and a stop or a Slack
    failure after it leaves an incident whose channel recovery makes (`finish_opening`).
    Raises `ChannelNotMade` when Slack does not make the channel now."""
    # Refused before anything is recorded: a title nobody can see must not open an incident.
    title = required_text(title, field="title", max_length=MAX_TITLE)
    incident = incidents.start_incident(
        uow=deps.uow, title=title, severity=severity, opened_by=opener, now=deps.clock()
    )
    log.info("incident recorded", incident_id=incident.id, user=opener)
    crash_point("open.incident_recorded")
    opened = finish_opening(deps, incident.id)
    return incident if opened is None else opened


class ChannelNotMade(ChatError):
    """The incident is recorded but Slack did not make its channel: recovery makes it."""

    def __init__(self, incident_id: str, why: str) -> None:
        super().__init__(
            f"Opened {incident_id}, but Slack did not make its channel ({why}). It will be "
            "made when Slack answers, and you will get a direct message saying where."
        )
        self.incident_id = incident_id


def finish_opening(deps: Deps, incident_id: str, *, late: bool = False) -> Incident | None:
    """Give an open incident what its opening has not yet: its channel (made and attached in
    a transaction of its own), the opener invited, the topic, the pinned card. Under the
    incident's claim, so the opening worker and recovery never both make a channel; None when
    another worker holds it.

    `late` (recovery): the opener is told by DM where a channel made now is."""
    with recovery.hold_incident(uow=deps.uow, incident_id=incident_id, wait=not late) as mine:
        if not mine:
            return None
        incident = incidents.get_incident(uow=deps.uow, incident_id=incident_id)
        if not incident.is_open:
            return incident
        made = not incident.has_channel
        if made:
            channel_id, channel_name = _make_channel(deps, incident)
            crash_point("open.channel_created")
            incident = incidents.attach_channel(
                uow=deps.uow,
                incident_id=incident.id,
                channel_id=channel_id,
                channel_name=channel_name,
                now=deps.clock(),
                late=late,
            )
            log.info("incident channel made", incident_id=incident.id, channel=channel_name)
        if incidents.incident_card(uow=deps.uow, incident_id=incident.id) is None:
            try:
                _set_up_channel(deps, incident)
            except ChatError as error:
                # The channel exists and the incident with it: the next sweep posts the card.
                log.warning("incident card not posted", incident_id=incident.id, error=str(error))
        if made and late:
            try:  # told once, whatever became of the card: the channel is there
                text = deps.views.channel_made_late(incident)
                deps.chat.send_dm(incident.opened_by, text=text)
            except ChatError as error:
                log.warning("opener not told of the late channel", error=str(error))
    deps.notify()  # the announce channel hears of it
    return incidents.get_incident(uow=deps.uow, incident_id=incident_id)


def _make_channel(deps: Deps, incident: Incident) -> tuple[str, str]:
    """A new channel named after the incident: its id and name."""
    channel_name = ""
    for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
        channel_name = incident_channel_name(
            deps.policy.incident.channel_prefix, incident.title, incident.opened_at, attempt
        )
        try:
            return deps.chat.create_channel(channel_name), channel_name
        except ChannelNameTaken:
            continue
        except ChatError as error:
            raise ChannelNotMade(incident.id, error.message) from error
    raise ChannelNotMade(incident.id, f"every channel name up to {channel_name} is taken")


def _set_up_channel(deps: Deps, incident: Incident) -> None:
    """The opener invited (and the policy's `invite` groups), the topic, the card posted and
    pinned, then remembered."""
    deps.chat.invite(incident.channel_id, [incident.opened_by])
    _invite_groups(deps, incident)
    deps.chat.set_topic(incident.channel_id, deps.views.topic(incident))
    text, blocks = deps.views.incident_card(incident)
    card_ts = deps.chat.post(incident.channel_id, text=text, blocks=blocks)
    deps.chat.pin(incident.channel_id, card_ts)
    incidents.attach_incident_card(uow=deps.uow, incident_id=incident.id, card_ts=card_ts)
    log.info("incident opened", incident_id=incident.id, channel=incident.channel_name)


def _invite_groups(deps: Deps, incident: Incident) -> None:
    """Invite the members of the policy's `invite` groups: listed members, a Slack user
    group's members (the Directory), whoever is on call (PagerDuty). A group that cannot be
    read or invited is logged and skipped: the incident opens all the same."""
    wanted: set[str] = set()
    for name in deps.policy.incident.invite_groups:
        try:
            wanted |= eligibility.members_now(
                policy=deps.policy, group=name, directory=deps.directory, oncall=deps.oncall
            )
        except (ChatError, OnCallUnavailable) as error:
            metrics.GROUP_LOOKUP_FAILURES.labels(eligibility.source_of(deps.policy, name)).inc()
            log.warning(
                "group not invited: its members could not be looked up",
                incident_id=incident.id,
                group=name,
                error=error.message,
            )
    wanted.discard(incident.opened_by)  # invited already
    if not wanted:
        return
    try:
        deps.chat.invite(incident.channel_id, sorted(wanted))
        return
    except ChatUnavailable as error:
        log.warning("groups not invited", incident_id=incident.id, error=error.message)
        return
    except ChatError as error:  # e.g. one deactivated account refuses the whole call
        log.warning("groups not invited at once", incident_id=incident.id, error=error.message)
    for user in sorted(wanted):
        try:
            deps.chat.invite(incident.channel_id, [user])
        except ChatError as error:
            log.warning("not invited", incident_id=incident.id, user=user, error=error.message)


def requestable(deps: Deps, *, channel_id: str, user: str) -> list[ResourceRule]:
    """What the request form offers `user` in `channel_id`: the resources they may request,
    in an open incident's channel. Refuses (NotFound, InvalidState, NotAllowed) when there
    is nothing to offer, so no form is shown for nothing."""
    incident_of_channel(deps, channel_id).require_open()
    offered = [
        rule
        for rule in deps.policy.resources.values()
        if eligibility_rules.may_offer(deps.policy, rule, user)
    ]
    if not offered:
        raise NotAllowed(
            "You are not among the requesters of any resource, so there is nothing to request "
            "here. Ask whoever runs Gatehouse if you need access."
        )
    return offered


def hand_off(deps: Deps, *, channel_id: str, to_user: str, by_user: str) -> None:
    """Make `to_user` the commander: only a person who can act (not a bot, not deactivated),
    or the incident would be left to an admin to close."""
    incident = incident_of_channel(deps, channel_id)
    if deps.directory is not None and not deps.directory.is_active_human(to_user):
        raise InvalidInput(
            Wording(
                Person(to_user),
                " cannot be the commander: name an active member of the workspace "
                "(not a bot, an app or a deactivated account).",
            )
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
    deps.chat.set_topic(channel_id, deps.views.topic(incident))
    refresh_incident_card(deps, incident)
    deps.chat.post(channel_id, text=deps.views.handed_off(incident, previous, by_user))


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


# What the lookups of a request's dynamic groups may take in all: filing runs inside the ack,
# which Slack waits 3 s for, and the commit and the answer need the rest.
LOOKUP_BUDGET_SECONDS = 1.5


def card_promised(request_id: str) -> str:
    """What the requester is told, once, when the request is filed and Slack did not take its
    card: it is there, and will show, so it is not filed again."""
    return f"Filed {request_id}; its card will appear here when Slack answers."


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
    """Look dynamic groups up (only a resource that has some asks Slack or PagerDuty), within
    `LOOKUP_BUDGET_SECONDS` in all (a group not looked up in time counts as a failed lookup),
    then commit the request in one short transaction: short enough to run inside the ack. Its
    card is the notifier's to post, now or, when Slack is down, as soon as Slack answers."""
    rule = deps.policy.resource(resource.strip())
    found = eligibility.resolve_groups(
        policy=deps.policy,
        rule=rule,
        requester_id=user,
        directory=deps.directory,
        oncall=deps.oncall,
        budget=LOOKUP_BUDGET_SECONDS,
    )
    _log_lookup_failures(found, resource=rule.name, user=user)
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
        raise NotAllowed(deps.views.with_lookup_notes(refused.wording, found.notes)) from None
    log.info(
        "request filed",
        incident_id=request.incident_id,
        request_id=request.id,
        resource=request.resource,
        user=user,
        break_glass=request.break_glass,
    )
    return Filed(request, found)


def _log_lookup_failures(found: Resolution, *, resource: str, user: str) -> None:
    """Each group not looked up, in detail for the operators (the log and a metric): the
    channel only says plainly that some could not be checked."""
    for group, note in zip(found.failed, found.notes, strict=False):
        metrics.GROUP_LOOKUP_FAILURES.labels(group.source.value).inc()
        log.warning(
            "group lookup failed; the group counts as empty for this request",
            group=group.name,
            source=group.source.value,
            resource=resource,
            user=user,
            error=note,
        )


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
    shown = access.request_card(uow=deps.uow, request_id=request.id) is not None
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
        # Straight to Vault: the card shows the outcome once the credential is delivered (or
        # Vault's refusal), so nothing stands between the click and the credential.
        count_outcome(result.request)
        waited = (result.decision.decided_at - result.request.requested_at).total_seconds()
        metrics.TIME_TO_APPROVAL.labels(result.request.resource).observe(waited)
        issue_and_deliver(deps, request_id=request_id)
        return
    if result.request.state is RequestState.DENIED and not result.request.break_glass:
        crash_point("deny.recorded")
        count_outcome(result.request)
    elif result.request.break_glass:
        _after_review(deps, result)
    deps.notify()


def _after_review(deps: Deps, result: access.DecisionResult) -> None:
    """A decision on break-glass access: a deny revokes it now and tells the channel."""
    if result.decision.verdict is Verdict.DENY:
        crash_point("breakglass.denied")
    if result.newly_reviewed:
        metrics.BREAK_GLASS.labels(result.request.resource, "reviewed").inc()
    if result.revoke_grant_id is not None:
        deps.vault_through()  # Vault revokes (the stream's Vault effects) before it is told
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
    if result.credential is not None and result.grant is not None:
        incident = result.incident or incident_of_request(deps, request_id)
        rule = deps.policy.resource(result.request.resource)
        text, blocks = deps.views.delivery(
            result.credential,
            rule,
            request_id=request_id,
            vault_addr=deps.vault_addr,
            now=deps.clock(),
            extendable=not result.request.break_glass,
        )
        kept: list[PrivateMessage] = []
        handed = _hand_over(
            deps,
            request_id=request_id,
            requester=result.request.requester_id,
            channel=incident.channel_id,
            message=(text, blocks),
            with_dm=rule.delivery is Delivery.WRAPPED,  # ephemerals vanish
            until=_worth_until(result.credential) if patient else deps.clock(),
            kept=kept,
        )
        if handed:
            issuing.record_delivery(
                uow=deps.uow,
                request_id=request_id,
                grant_id=result.grant.id,
                now=deps.clock(),
                kept=kept,
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
    kept: list[PrivateMessage],
) -> bool:
    """Give the requester the credential privately: an ephemeral, and a DM too when asked
    (where it is goes into `kept`, recorded with the delivery).

    The credential exists only in this worker's memory, so while Slack is unavailable it is
    offered again (2 s, doubling, at most 30 s apart), each message sent once, under the
    request's claim that keeps recovery from ending the access as never delivered. It stops
    when the access has ended meanwhile (False: its own event tells the requester) and gives
    up, raising, when the next try would come after `until` (the credential of no use by
    then, or a caller that cannot wait)."""
    text, blocks = message
    steps = [lambda: deps.chat.post_ephemeral(channel, requester, text=text, blocks=blocks)]
    if with_dm:
        steps.append(lambda: kept.append(_credential_dm(deps, request_id, requester, message)))
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
            current = access.get_request(uow=deps.uow, request_id=request_id)
            if current.state is not RequestState.ACTIVE or not current.awaiting_delivery:
                return False
            continue
        steps.pop(0)
    return True


CREDENTIAL_DM = "credential"  # the kind of the kept DM that carried the credential


def _credential_dm(
    deps: Deps, request_id: str, requester: str, message: tuple[str, list[dict[str, Any]]]
) -> PrivateMessage:
    """The credential by DM, and where it is (never what it says), kept with the delivery so
    the notifier redraws it without the credential and its buttons once the access ends."""
    text, blocks = message
    channel = deps.chat.open_dm(requester)
    ts = deps.chat.post(channel, text=text, blocks=blocks)
    return PrivateMessage(request_id, CREDENTIAL_DM, requester, channel, ts)


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
    card_ts = incidents.incident_card(uow=deps.uow, incident_id=incident.id)
    if card_ts and incident.channel_id:
        text, blocks = deps.views.incident_card(incident)
        deps.chat.update(incident.channel_id, card_ts, text=text, blocks=blocks)


def cancel(deps: Deps, *, request_id: str, user: str) -> None:
    after_cancel(deps, record_cancel(deps, request_id=request_id, user=user))


def record_cancel(deps: Deps, *, request_id: str, user: str) -> AccessRequest:
    """Commit the cancel: one short transaction, before Slack is told it happened."""
    return access.cancel_request(
        uow=deps.uow, request_id=request_id, by_user=user, now=deps.clock()
    )


def after_cancel(deps: Deps, request: AccessRequest) -> None:
    crash_point("cancel.recorded")
    count_outcome(request)
    deps.notify()


def revoke(deps: Deps, *, request_id: str, user: str) -> None:
    """End access now, waiting for a worker that holds the request (issuing or delivering
    it); then Vault revokes, as after `record_revoke`."""
    with recovery.hold_request(uow=deps.uow, request_id=request_id) as mine:
        mine.ensure_held()  # never revoke without it, even when waiting for it timed out
        access.record_revocation(
            uow=deps.uow,
            policy=deps.policy,
            request_id=request_id,
            by_user=user,
            now=deps.clock(),
        )
    _revoked(deps, request_id)


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


def after_revoke(deps: Deps, *, request_id: str) -> None:
    """Vault revokes the grant (the stream's Vault effects); the notifier tells the card and
    the requester. Whatever a stop leaves undone, any replica's stream follower finishes (a
    failed attempt the sweep retries), and the notifier says it once."""
    crash_point("revoke.recorded")
    _revoked(deps, request_id)


def _revoked(deps: Deps, request_id: str) -> None:
    """After an end of access is recorded: Vault's answer first, then the outcome told."""
    deps.vault_through()
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
