"""Issuing and revoking credentials: the only use cases that call the credential broker.

Exactly one credential per approved request: the grant (ISSUING) is committed under the
request's row lock before Vault is called, and only one live grant per request can exist.
When Vault is unreachable the attempt is recorded as a failed grant, the request stays
APPROVED, and `retry_issues` tries again with backoff; any other refusal fails the request.

Each Vault call runs under a claim (`issue:<request>`, `revoke:<grant>`) held until its answer
is recorded, so no two workers, in any replica, call Vault for the same item at once; a claim
that can be taken while the record says ISSUING means the issuer died (see `sweeps`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import events
from bot.domain.access import AccessRequest, RequestState
from bot.domain.backoff import retry_wait
from bot.domain.errors import CredentialError, CredentialUnavailable, NotFound
from bot.domain.events import Delivered
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident
from bot.domain.lifecycle import Access
from bot.domain.ports import (
    Claim,
    CredentialBroker,
    IssuedCredential,
    PrivateMessage,
    UnitOfWork,
    UnitOfWorkFactory,
)
from bot.domain.rules import AccessPolicy
from bot.services.common import (
    about_grant,
    claim_key,
    lock_request,
    random_token,
    record_access,
    request_by_id,
)
from bot.services.crashpoints import crash_point

FIRST_RETRY_AFTER = timedelta(seconds=15)
LONGEST_RETRY_WAIT = timedelta(minutes=5)
INTERRUPTED_ISSUE = "interrupted before Vault's answer was recorded"


@dataclass(frozen=True)
class IssueResult:
    request: AccessRequest
    grant: Grant | None
    credential: IssuedCredential | None = None
    error: str | None = None
    retrying: bool = False
    incident: Incident | None = None  # as read with Vault's answer: where to deliver


def issue_access(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
    wait: bool = True,
    track_delivery: bool = False,
) -> IssueResult:
    """Issue the one credential of an APPROVED request; any further call is a no-op, and so is
    a call that does not `wait` while another worker is issuing it.

    The credential comes back to the caller for private delivery only: it is never stored.
    `track_delivery`: the caller delivers it under the request's claim and then calls
    `record_delivery`; the request awaits delivery until then, so that recovery can end access
    whose credential died undelivered with its process.
    """
    with uow.claim(claim_key("issue", request_id), wait=wait) as mine:
        if not mine:
            with uow() as tx:
                request = request_by_id(tx, request_id)
                return IssueResult(request, tx.grants.get_for_request(request.id))
        return _issue(
            uow=uow,
            policy=policy,
            broker=broker,
            request_id=request_id,
            clock=clock,
            track_delivery=track_delivery,
            claim=mine,
        )


def _issue(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
    track_delivery: bool,
    claim: Claim,
) -> IssueResult:
    now = clock()

    def record_intent(tx: UnitOfWork) -> IssueResult | tuple[Grant, datetime]:
        incident, request = lock_request(tx, request_id)
        access = Access(request, tx.grants.get_for_request(request.id))
        if request.state is not RequestState.APPROVED or access.grant is not None:
            return IssueResult(request, access.grant)
        started = access.start_issue(grant_id=f"G-{random_token()}", incident=incident, now=now)
        assert access.grant is not None  # start_issue put it on record
        tx.grants.add(access.grant)
        for event in started:
            tx.audit.append(event)
        return access.grant, access.credential_ends_at

    recorded = uow.run(record_intent)
    if isinstance(recorded, IssueResult):
        return recorded
    grant, until = recorded
    crash_point("issue.intent_recorded")
    claim.ensure_held()  # lost: the grant stays ISSUING, failed and retried once the claim is free
    try:
        credential = broker.issue(
            grant=grant, resource=policy.resource(grant.resource), until=until, now=now
        )
    except CredentialError as error:
        return _record_issue_failure(uow=uow, grant_id=grant.id, error=error, now=clock())
    crash_point("issue.vault_called")
    result = _record_issued(
        uow=uow,
        broker=broker,
        grant_id=grant.id,
        credential=credential,
        clock=clock,
        track_delivery=track_delivery,
    )
    crash_point("issue.result_recorded")
    return result


def _record_issue_failure(
    *, uow: UnitOfWorkFactory, grant_id: str, error: CredentialError, now: datetime
) -> IssueResult:
    retrying = isinstance(error, CredentialUnavailable)

    def record_failure(tx: UnitOfWork) -> IssueResult:
        _, access = _lock_grant(tx, grant_id)
        assert access.grant is not None  # _lock_grant found it
        retry_at = _next_attempt_at(tx, access.grant, now) if retrying else None
        record_access(
            tx, access, access.issue_failed(error=error.message, retry_at=retry_at, now=now)
        )
        return IssueResult(access.request, access.grant, error=error.message, retrying=retrying)

    return uow.run(record_failure)


def _record_issued(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    grant_id: str,
    credential: IssuedCredential,
    clock: Callable[[], datetime],
    track_delivery: bool,
) -> IssueResult:
    now = clock()

    def record_answer(tx: UnitOfWork) -> IssueResult:
        incident, access = _lock_grant(tx, grant_id)
        caused = access.issued(
            credential=credential, incident=incident, now=now, awaiting_delivery=track_delivery
        )
        record_access(tx, access, caused)
        wanted = access.request.state is RequestState.ACTIVE
        return IssueResult(
            access.request, access.grant, credential if wanted else None, incident=incident
        )

    result = uow.run(record_answer)
    if result.credential is None and result.grant is not None:
        revoked = revoke_grant(uow=uow, broker=broker, grant_id=result.grant.id, clock=clock)
        return IssueResult(result.request, revoked)
    return result


def record_delivery(
    *,
    uow: UnitOfWorkFactory,
    request_id: str,
    grant_id: str,
    now: datetime,
    kept: Sequence[PrivateMessage] = (),
) -> None:
    """The requester has the credential: on record (`Delivered`, which the notifier tells
    the card and the thread), and recovery will not end this access as undelivered. `kept`:
    where the messages that carried it are, for the notifier to redraw when access ends."""

    def record(tx: UnitOfWork) -> None:
        _, request = lock_request(tx, request_id)
        for message in kept:
            tx.cards.keep_private_message(message)
        if not request.awaiting_delivery:
            return
        request.awaiting_delivery = False
        tx.requests.save(request)
        tx.audit.append(
            Delivered(
                at=now,
                incident_id=request.incident_id,
                request_id=request.id,
                grant_id=grant_id,
            )
        )

    uow.run(record)


def retry_issues(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    clock: Callable[[], datetime],
    limit: int = 50,
) -> list[IssueResult]:
    """Issue APPROVED requests whose last attempt failed because Vault was unavailable.

    Waits 15 s after the first failure, doubling up to 5 min between attempts. Requests another
    worker is issuing are left to it; the results are the attempts made here.
    """
    results = (
        issue_access(
            uow=uow, policy=policy, broker=broker, request_id=request_id, clock=clock, wait=False
        )
        for request_id in due_issue_retries(uow=uow, now=clock(), limit=limit)
    )
    return [result for result in results if result.credential is not None or result.error]


def due_issue_retries(*, uow: UnitOfWorkFactory, now: datetime, limit: int = 50) -> list[str]:
    """APPROVED requests due for another attempt (see `retry_issues`), soonest due first.

    Due when every attempt so far failed and the last one's `retry_at` has come (its backoff
    passed, or at once when its process did not live to finish it); an approved request nobody
    tried to issue (its worker stopped or failed before Vault was asked) is due once the first
    wait has passed since its approval.
    """
    with uow() as tx:
        return list(
            tx.requests.list_due_issue_retries(
                now, approved_before=now - FIRST_RETRY_AFTER, limit=limit
            )
        )


def _next_attempt_at(tx: UnitOfWork, failed: Grant, now: datetime) -> datetime:
    """When the request of an attempt Vault could not serve is to be tried again: 15 s after
    the first failure, doubling up to 5 min."""
    attempts = len(tx.grants.list_for_request(failed.request_id))
    return now + retry_wait(attempts, first=FIRST_RETRY_AFTER, longest=LONGEST_RETRY_WAIT)


def revoke_grant(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    grant_id: str,
    clock: Callable[[], datetime],
    wait: bool = True,
) -> Grant:
    """Ask Vault to revoke a REVOKING grant and record its confirmation, or the failure.

    Under the grant's claim: a worker that does not `wait` leaves a grant another worker is
    revoking to it, and one that waits finds it confirmed; Vault is asked once.
    """
    with uow.claim(claim_key("revoke", grant_id), wait=wait) as mine:
        with uow() as tx:
            grant = _grant(tx, grant_id)
        if not mine or grant.status is not GrantStatus.REVOKING:
            return grant
        if not grant.has_credential:
            return grant  # still being issued: the issuing path revokes it once Vault answers
        crash_point("revoke.intent_recorded")
        mine.ensure_held()  # lost: the grant stays REVOKING, for the revocation retries
        return _revoke_and_record(uow=uow, broker=broker, grant=grant, clock=clock)


def _revoke_and_record(
    *, uow: UnitOfWorkFactory, broker: CredentialBroker, grant: Grant, clock: Callable[[], datetime]
) -> Grant:
    grant_id = grant.id
    try:
        confirmed_at: datetime | None = broker.revoke(grant=grant)
        error = None
    except CredentialError as failure:
        confirmed_at, error = None, failure.message
    crash_point("revoke.vault_called")
    now = clock()
    with uow() as tx:
        grant = _grant(tx, grant_id, for_update=True)
        if grant.status is not GrantStatus.REVOKING:
            return grant
        record_revocation(tx, grant, confirmed_at=confirmed_at, error=error, now=now)
        tx.commit()
    crash_point("revoke.result_recorded")
    return grant


def record_revocation(
    tx: UnitOfWork,
    grant: Grant,
    *,
    confirmed_at: datetime | None,
    error: str | None,
    now: datetime,
) -> None:
    """Record what Vault said of a REVOKING grant (locked): confirmed gone at `confirmed_at`,
    or not confirmed (`error`), to be asked again after a backoff."""
    if confirmed_at is not None:
        grant.confirm_revoked(confirmed_at=confirmed_at)
        tx.audit.append(
            events.RevocationConfirmed(
                **about_grant(grant), at=now, actor=None, confirmed_at=confirmed_at
            )
        )
    else:
        grant.revocation_failed(error=error or "revocation not confirmed", now=now)
        tx.audit.append(
            events.RevocationFailed(
                **about_grant(grant),
                at=now,
                actor=None,
                error=grant.last_error,
                attempts=grant.revoke_attempts,
            )
        )
    tx.grants.save(grant)


def record_incident_token(
    *, uow: UnitOfWorkFactory, incident_id: str, accessor: str, now: datetime
) -> None:
    """Put an incident token's accessor on record (its own transaction) before it is used."""
    with uow() as tx:
        tx.vault_tokens.add(incident_id=incident_id, accessor=accessor, now=now)
        tx.audit.append(
            events.IncidentTokenCreated(
                at=now, actor=None, incident_id=incident_id, accessor=accessor
            )
        )
        tx.commit()


class StoredIncidentTokens:
    """The incident token ledger in the database: each accessor in its own audited transaction,
    committed before the broker uses the token."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    def record(self, incident_id: str, accessor: str) -> None:
        record_incident_token(
            uow=self._uow, incident_id=incident_id, accessor=accessor, now=self._clock()
        )


def revoke_incident_tokens(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    incident_id: str,
    clock: Callable[[], datetime],
    wait: bool = True,
) -> list[str]:
    """Revoke every recorded token of an incident; returns the accessors still unconfirmed
    (or left to another worker revoking them, when not `wait`)."""
    with uow.claim(claim_key("incident-tokens", incident_id), wait=wait) as mine:
        with uow() as tx:
            accessors = [accessor for _, accessor in tx.vault_tokens.list_unrevoked(incident_id)]
        if not mine or not accessors:
            return accessors
        mine.ensure_held()  # lost: the tokens stay on record, for the revocation retries
        return _revoke_incident_tokens(
            uow=uow, broker=broker, incident_id=incident_id, accessors=accessors, clock=clock
        )


def _revoke_incident_tokens(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    incident_id: str,
    accessors: list[str],
    clock: Callable[[], datetime],
) -> list[str]:
    try:
        confirmed_at = broker.revoke_incident(incident_id=incident_id, accessors=accessors)
    except CredentialError as error:
        with uow() as tx:
            tx.audit.append(
                events.IncidentTokensRevocationFailed(
                    at=clock(),
                    actor=None,
                    incident_id=incident_id,
                    accessors=tuple(accessors),
                    error=error.message,
                )
            )
            tx.commit()
        return accessors
    with uow() as tx:
        tx.vault_tokens.mark_revoked(accessors, at=confirmed_at)
        tx.audit.append(
            events.IncidentTokensRevoked(
                at=clock(),
                actor=None,
                incident_id=incident_id,
                accessors=tuple(accessors),
                confirmed_at=confirmed_at,
            )
        )
        tx.commit()
    return []


def _lock_grant(tx: UnitOfWork, grant_id: str) -> tuple[Incident, Access]:
    """A grant's access locked for update in the lock order: its incident held, its request
    locked, then the grant."""
    incident, request = lock_request(tx, _grant(tx, grant_id).request_id)
    return incident, Access(request, _grant(tx, grant_id, for_update=True))


def _grant(tx: UnitOfWork, grant_id: str, *, for_update: bool = False) -> Grant:
    grant = tx.grants.get(grant_id, for_update=for_update)
    if grant is None:
        raise NotFound(f"There is no grant {grant_id}.")
    return grant
