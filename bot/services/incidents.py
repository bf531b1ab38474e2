"""Incident use cases: open, hand off, close (with revocation and the audit summary)."""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain import events
from bot.domain.access import CLOSE_REASON, RequestState
from bot.domain.errors import CredentialError, CredentialUnavailable
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
from bot.services.issuing import record_revocation, revoke_grant, revoke_incident_tokens

_UNISSUED = (RequestState.PENDING, RequestState.APPROVED)
CONFIRMATIONS_AT_ONCE = 32  # grants confirmed gone side by side (Vault lookups) at a close
RECORDED_AT_ONCE = 100  # grants recorded REVOKED per transaction


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
    confirmations_at_once: int = CONFIRMATIONS_AT_ONCE,
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
        confirmations_at_once=confirmations_at_once,
    )
    result.cancelled = cancelled
    return result


def complete_close(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    incident_id: str,
    clock: Callable[[], datetime],
    confirmations_at_once: int = CONFIRMATIONS_AT_ONCE,
) -> CloseResult:
    """Cut what a closed incident still holds, confirm each grant gone, then build its summary.

    The second half of a close, and how a close cut short (a restart) is finished. First the
    incident's token tree: every grant token and lease was issued under an incident token, so
    revoking those (normally one request) makes all access unusable at once. Then each grant
    is confirmed gone by lookups, `confirmations_at_once` side by side, and recorded REVOKED in
    a few transactions. A grant Vault still knows (issued under a token not on record) is
    revoked on its own, as any revocation is; one Vault did not confirm stays REVOKING and is
    reported, and the sweeps retry it.
    """
    # The tree before anything else is read: each moment before it, access still works.
    revoke_incident_tokens(uow=uow, broker=broker, incident_id=incident_id, clock=clock)
    crash_point("close.tree_revoked")
    with uow() as tx:
        incident = incident_by_id(tx, incident_id)
        to_revoke = tx.grants.list_for_incident(incident.id, statuses=[GrantStatus.REVOKING])
    with ThreadPoolExecutor(max_workers=confirmations_at_once) as pool:
        checks = _GoneChecks(uow=uow, broker=broker)
        checked = list(pool.map(checks.check, to_revoke))
        _record_checks(uow=uow, incident_id=incident.id, checked=checked, now=clock())
        crash_point("close.grants_confirmed")
        still_held = [check.grant for check in checked if check.still_held]
        list(
            pool.map(
                lambda grant: revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock),
                still_held,
            )
        )
    # A token an issuer put on record after the close began (none, as a rule) goes too.
    unconfirmed_tokens = revoke_incident_tokens(
        uow=uow, broker=broker, incident_id=incident.id, clock=clock
    )
    with uow() as tx:
        outcomes = tx.grants.list_for_incident(incident.id, ids=[g.id for g in to_revoke])
    return CloseResult(
        incident=incident,
        summary=build_summary(uow=uow, incident_id=incident.id),
        revoked=[g for g in outcomes if g.status is GrantStatus.REVOKED],
        # A grant Vault never issued (FAILED) has nothing left to revoke.
        unconfirmed=[g for g in outcomes if g.status is GrantStatus.REVOKING],
        unconfirmed_tokens=unconfirmed_tokens,
    )


@dataclass(frozen=True)
class _GoneCheck:
    """What Vault said of one grant after the tree was revoked."""

    grant: Grant
    confirmed_at: datetime | None = None  # gone
    error: str | None = None  # Vault could not tell
    still_held: bool = False  # Vault still knows it: revoke it on its own

    @property
    def answered(self) -> bool:
        return self.confirmed_at is not None or self.error is not None


class _GoneChecks:
    """Confirms grants gone, from many threads. Once Vault is found unavailable the grants
    not asked about yet are reported with that error rather than each waiting out its retries:
    the sweeps ask again later, one grant at a time."""

    def __init__(self, *, uow: UnitOfWorkFactory, broker: CredentialBroker) -> None:
        self._uow = uow
        self._broker = broker
        self._outage: str | None = None

    def check(self, grant: Grant) -> _GoneCheck:
        if not grant.has_credential:
            # Vault was still issuing it when the close committed: wait for its issuer (its
            # claim), which revokes it as soon as Vault answers; the close always wins.
            with self._uow.claim(claim_key("issue", grant.request_id), wait=True):
                pass
            with self._uow() as tx:
                grant = tx.grants.get(grant.id) or grant
            if grant.status is not GrantStatus.REVOKING or not grant.has_credential:
                return _GoneCheck(grant)  # revoked by its issuer, or nothing was issued
        if self._outage is not None:
            return _GoneCheck(grant, error=self._outage)
        try:
            confirmed_at = self._broker.confirm_gone(grant=grant)
        except CredentialUnavailable as error:
            self._outage = error.message
            return _GoneCheck(grant, error=error.message)
        except CredentialError as error:
            return _GoneCheck(grant, error=error.message)
        return _GoneCheck(grant, confirmed_at=confirmed_at, still_held=confirmed_at is None)


def _record_checks(
    *, uow: UnitOfWorkFactory, incident_id: str, checked: Sequence[_GoneCheck], now: datetime
) -> None:
    """Record each answer (REVOKED, or not confirmed) on its grant, `RECORDED_AT_ONCE` grants
    a transaction: few transactions, none holding the audit chain's lock for long."""
    answered = {check.grant.id: check for check in checked if check.answered}
    ids = list(answered)
    for start in range(0, len(ids), RECORDED_AT_ONCE):

        def record(
            tx: UnitOfWork, chunk: Sequence[str] = ids[start : start + RECORDED_AT_ONCE]
        ) -> None:
            revoking = tx.grants.list_for_incident(
                incident_id, statuses=[GrantStatus.REVOKING], ids=chunk, for_update=True
            )
            for grant in revoking:
                check = answered[grant.id]
                record_revocation(
                    tx, grant, confirmed_at=check.confirmed_at, error=check.error, now=now
                )

        uow.run(record)


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
