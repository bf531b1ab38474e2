"""Incident use cases: open, hand off, close (with revocation and the audit summary)."""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain import events
from bot.domain.access import CLOSE_REASON, RequestState
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident, Severity, new_incident_id, open_incident
from bot.domain.lifecycle import Access
from bot.domain.ports import CredentialBroker, UnitOfWork, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.domain.summary import IncidentSummary, summarize_incident
from bot.services.common import (
    claim_key,
    incident_by_id,
    incident_for_channel,
    random_token,
    record_access,
    request_by_id,
)
from bot.services.crashpoints import crash_point
from bot.services.issuing import revoke_grant, revoke_incident_tokens

_UNISSUED = (RequestState.PENDING, RequestState.APPROVED)
PARALLEL_REVOCATIONS = 4


def start_incident(
    *,
    uow: UnitOfWorkFactory,
    title: str,
    severity: Severity,
    opened_by: str,
    now: datetime,
    channel_id: str = "",
    channel_name: str = "",
) -> Incident:
    """Record a new incident, as a rule before its Slack channel exists (`attach_channel`
    names it afterwards), so that a failure in between leaves an incident recovery gives a
    channel to, never a channel without an incident. Its `incident.opened` event names the
    channel only when one is given."""
    incident = open_incident(
        incident_id=new_incident_id(now, random_token()),
        title=title,
        severity=severity,
        opened_by=opened_by,
        channel_id=channel_id,
        channel_name=channel_name,
        now=now,
    )
    with uow() as tx:
        tx.incidents.add(incident)
        tx.audit.append(
            events.IncidentOpened(
                at=now,
                actor=opened_by,
                incident_id=incident.id,
                title=incident.title,
                severity=incident.severity.value,
                channel_id=channel_id,
                channel_name=channel_name,
                commander=opened_by,
            )
        )
        tx.commit()
    return incident


def attach_channel(
    *,
    uow: UnitOfWorkFactory,
    incident_id: str,
    channel_id: str,
    channel_name: str,
    now: datetime,
    late: bool = False,
) -> Incident:
    """Name the Slack channel just made for an incident recorded without one; `late` when
    recovery made it."""
    with uow() as tx:
        incident = incident_by_id(tx, incident_id, for_update=True)
        incident.attach_channel(channel_id=channel_id, channel_name=channel_name)
        tx.incidents.save(incident)
        tx.audit.append(
            events.IncidentChannelCreated(
                at=now,
                incident_id=incident.id,
                channel_id=channel_id,
                channel_name=channel_name,
                late=late,
            )
        )
        tx.commit()
    return incident


def unfinished_opens(
    *, uow: UnitOfWorkFactory, opened_before: datetime, limit: int = 20
) -> Sequence[Incident]:
    """Open incidents whose opening stopped (or Slack failed) before their channel or pinned
    card was made: the oldest `limit` opened before `opened_before`."""
    with uow() as tx:
        return tx.incidents.list_unfinished_opens(opened_before, limit)


def hand_off_incident(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    incident_id: str,
    to_user: str,
    by_user: str,
    now: datetime,
) -> Incident:
    with uow() as tx:
        incident = incident_by_id(tx, incident_id, for_update=True)
        previous = incident.hand_off(
            to_user=to_user, by_user=by_user, is_admin=policy.is_admin(by_user)
        )
        tx.incidents.save(incident)
        tx.audit.append(
            events.CommanderChanged(
                at=now,
                actor=by_user,
                incident_id=incident.id,
                previous=previous,
                commander=to_user,
            )
        )
        tx.commit()
    return incident


@dataclass
class CloseResult:
    incident: Incident
    summary: IncidentSummary
    revoked: list[Grant] = field(default_factory=list)
    unconfirmed: list[Grant] = field(default_factory=list)
    unconfirmed_tokens: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # requests the close cancelled


def close_incident(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    incident_id: str,
    closed_by: str,
    resolution: str,
    clock: Callable[[], datetime],
    revocations_at_once: int = PARALLEL_REVOCATIONS,
) -> CloseResult:
    """Mark closed, end every request, revoke and confirm, then build the summary.

    The close is committed first, so no new access can start while Vault is being called.
    A revocation Vault does not confirm stays REVOKING and is reported; sweeps retry it. The
    incident keeps `summary_pending` (and `archive_pending`) until Slack shows the close, so
    a close cut short is finished by `complete_close` after a restart.
    """
    now = clock()

    def close_and_end_access(tx: UnitOfWork) -> tuple[Incident, list[str]]:
        # The lock order: the incident, then all its requests, then all its grants, each
        # locked in one statement before anything is changed or recorded (the first audit
        # append takes the chain's lock, which must come last).
        incident = incident_by_id(tx, incident_id, for_update=True)
        unissued = tx.requests.list_for_incident(incident.id, states=_UNISSUED, for_update=True)
        active = tx.requests.list_for_incident(
            incident.id, states=[RequestState.ACTIVE], for_update=True
        )
        grants = tx.grants.list_for_incident(
            incident.id, statuses=(GrantStatus.ISSUING, GrantStatus.ACTIVE), for_update=True
        )
        incident.close(
            by_user=closed_by,
            resolution=resolution,
            is_admin=policy.is_admin(closed_by),
            now=now,
        )
        incident.summary_pending = True
        incident.archive_pending = policy.incident.archive_on_close
        tx.incidents.save(incident)
        closed = events.EndCause.INCIDENT_CLOSED
        # Each access ends in one step: requests not issued yet are cancelled, active access
        # revoked, and every credential being issued or issued is to be revoked (also one
        # whose request was cancelled while Vault was issuing it).
        live = {grant.request_id: grant for grant in grants}
        for request in (*unissued, *active):
            access = Access(request, live.pop(request.id, None))
            record_access(
                tx, access, access.end(closed, now=now, by=closed_by, reason=CLOSE_REASON)
            )
        for request_id, grant in live.items():
            # Its request ended already (read, not locked: a terminal request never changes).
            access = Access(request_by_id(tx, request_id), grant)
            caused = access.end(closed, now=now, by=closed_by, reason=CLOSE_REASON)
            record_access(tx, access, caused, request_changed=False)
        cancelled = [request.id for request in unissued]
        tx.audit.append(
            events.IncidentClosed(
                at=now, actor=closed_by, incident_id=incident.id, resolution=incident.resolution
            )
        )
        return incident, cancelled

    incident, cancelled = uow.run(close_and_end_access)
    crash_point("close.intent_recorded")
    result = complete_close(
        uow=uow,
        broker=broker,
        incident_id=incident.id,
        clock=clock,
        revocations_at_once=revocations_at_once,
    )
    result.cancelled = cancelled
    return result


def complete_close(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    incident_id: str,
    clock: Callable[[], datetime],
    revocations_at_once: int = PARALLEL_REVOCATIONS,
) -> CloseResult:
    """Revoke and confirm what a closed incident still holds, then build its summary.

    The second half of a close, and how a close cut short (a restart) is finished.
    """
    with uow() as tx:
        incident = incident_by_id(tx, incident_id)
        to_revoke = tx.grants.list_for_incident(incident.id, statuses=[GrantStatus.REVOKING])
    with ThreadPoolExecutor(max_workers=revocations_at_once) as pool:
        outcomes = list(
            pool.map(
                lambda grant: _revoke_once_issued(uow=uow, broker=broker, grant=grant, clock=clock),
                to_revoke,
            )
        )
    # Last, the incident's own tokens: whatever Vault still holds under them dies with them.
    unconfirmed_tokens = revoke_incident_tokens(
        uow=uow, broker=broker, incident_id=incident.id, clock=clock
    )
    return CloseResult(
        incident=incident,
        summary=build_summary(uow=uow, incident_id=incident.id),
        revoked=[g for g in outcomes if g.status is GrantStatus.REVOKED],
        # A grant Vault never issued (FAILED) has nothing left to revoke.
        unconfirmed=[g for g in outcomes if g.status is GrantStatus.REVOKING],
        unconfirmed_tokens=unconfirmed_tokens,
    )


def _revoke_once_issued(
    *, uow: UnitOfWorkFactory, broker: CredentialBroker, grant: Grant, clock: Callable[[], datetime]
) -> Grant:
    """Revoke a grant the close ended. A grant Vault was still issuing when the close
    committed has no credential on record yet: wait for its issuer (its claim), which revokes
    it as soon as Vault answers, so the close reports it revoked rather than pending."""
    if not grant.has_credential:
        with uow.claim(claim_key("issue", grant.request_id), wait=True):
            pass
    return revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)


def unfinished_closes(
    *, uow: UnitOfWorkFactory, policy: AccessPolicy, now: datetime, limit: int = 20
) -> Sequence[Incident]:
    """Closed incidents whose summary is not posted yet, or whose channel's archive is due
    (`archive_after` past the close)."""
    with uow() as tx:
        return tx.incidents.list_closing(
            limit, archive_closed_before=now - policy.incident.archive_after
        )


def archive_due(incident: Incident, policy: AccessPolicy, now: datetime) -> bool:
    """Whether a closed incident's channel is to be archived now."""
    return (
        incident.archive_pending
        and incident.closed_at is not None
        and incident.closed_at + policy.incident.archive_after <= now
    )


def mark_summary_posted(*, uow: UnitOfWorkFactory, incident_id: str) -> None:
    with uow() as tx:
        incident = incident_by_id(tx, incident_id, for_update=True)
        incident.summary_pending = False
        tx.incidents.save(incident)
        tx.commit()


def mark_archived(*, uow: UnitOfWorkFactory, incident_id: str) -> None:
    with uow() as tx:
        incident = incident_by_id(tx, incident_id, for_update=True)
        incident.archive_pending = False
        tx.incidents.save(incident)
        tx.commit()


def build_summary(*, uow: UnitOfWorkFactory, incident_id: str) -> IncidentSummary:
    """The incident as its audit trail tells it, with the chain head that witnesses it."""
    with uow() as tx:
        events = list(tx.audit.events(incident_id=incident_id))
        head = tx.audit.head()
    return summarize_incident(incident_id, events, head=head)


def get_incident(*, uow: UnitOfWorkFactory, incident_id: str) -> Incident:
    with uow() as tx:
        return incident_by_id(tx, incident_id)


def find_incident_for_channel(*, uow: UnitOfWorkFactory, channel_id: str) -> Incident | None:
    with uow() as tx:
        return tx.incidents.get_by_channel(channel_id)


def attach_incident_card(*, uow: UnitOfWorkFactory, incident_id: str, card_ts: str) -> None:
    """Remember the incident's pinned card, so it can be updated in place."""
    with uow() as tx:
        tx.cards.attach_to_incident(incident_by_id(tx, incident_id).id, card_ts)
        tx.commit()


def incident_card(*, uow: UnitOfWorkFactory, incident_id: str) -> str | None:
    """The ts of the incident's pinned card, once posted."""
    with uow() as tx:
        return tx.cards.of_incident(incident_by_id(tx, incident_id).id)


def incident_status(*, uow: UnitOfWorkFactory, channel_id: str) -> tuple[Incident, int, int]:
    """The incident of a channel with its pending request and active grant counts."""
    with uow() as tx:
        incident = incident_for_channel(tx, channel_id)
        pending = tx.requests.list_for_incident(incident.id, states=[RequestState.PENDING])
        active = tx.requests.list_for_incident(incident.id, states=[RequestState.ACTIVE])
    return incident, len(pending), len(active)


def list_open_incidents(*, uow: UnitOfWorkFactory) -> Sequence[Incident]:
    with uow() as tx:
        return tx.incidents.list_open()


def incident_for_request(*, uow: UnitOfWorkFactory, request_id: str) -> Incident:
    """The incident a request was filed in."""
    with uow() as tx:
        request = request_by_id(tx, request_id)
        return incident_by_id(tx, request.incident_id)
