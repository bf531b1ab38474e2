"""Access use cases: file a request, decide it, issue the credential, cancel, revoke."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.access import (
    AccessRequest,
    Decision,
    RequestState,
    Verdict,
    file_request,
    new_request_id,
)
from bot.domain.audit import Action, utc_iso
from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import CredentialError, InvalidState, NotAllowed, NotFound
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import Incident
from bot.domain.ports import CredentialBroker, IssuedCredential, UnitOfWork, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.services.common import (
    end_grant,
    incident_by_id,
    incident_for_channel,
    random_token,
    record_for_grant,
    record_for_request,
    request_by_id,
)


def request_access(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    channel_id: str,
    requester_id: str,
    resource: str,
    duration: str | None,
    reason: str,
    now: datetime,
) -> AccessRequest:
    """File a PENDING request in the incident that owns `channel_id`."""
    rule = policy.resource(resource.strip())
    requested = parse_duration(duration) if duration else None
    with uow() as tx:
        incident = incident_for_channel(tx, channel_id)
        request = file_request(
            request_id=new_request_id(random_token()),
            incident=incident,
            policy=policy,
            resource=rule,
            requester_id=requester_id,
            duration=requested,
            reason=reason,
            now=now,
        )
        tx.requests.add(request)
        record_for_request(
            tx,
            Action.REQUEST_FILED,
            request,
            at=now,
            actor=requester_id,
            resource=request.resource,
            duration=format_duration(request.duration),
            reason=request.reason,
            approvals_required=request.approvals_required,
            approvers=sorted(request.possible_approvers),
        )
        tx.commit()
    return request


@dataclass(frozen=True)
class DecisionResult:
    request: AccessRequest
    decision: Decision

    @property
    def approved(self) -> bool:
        return self.request.state is RequestState.APPROVED


def decide_request(
    *,
    uow: UnitOfWorkFactory,
    request_id: str,
    approver_id: str,
    verdict: Verdict,
    reason: str | None,
    now: datetime,
) -> DecisionResult:
    """Record an approval or a denial, under a lock on the request."""
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        incident_by_id(tx, request.incident_id).require_open()
        decision = request.decide(approver_id=approver_id, verdict=verdict, reason=reason, now=now)
        tx.requests.add_decision(decision)
        tx.requests.save(request)
        record_for_request(
            tx,
            Action.REQUEST_DECIDED,
            request,
            at=now,
            actor=approver_id,
            verdict=verdict.value,
            reason=decision.reason,
            approvals=len(request.approvers_so_far),
            approvals_required=request.approvals_required,
        )
        if request.state is RequestState.APPROVED:
            record_for_request(
                tx,
                Action.REQUEST_APPROVED,
                request,
                at=now,
                actor=None,
                approvers=request.approvers_so_far,
            )
        elif request.state is RequestState.DENIED:
            record_for_request(
                tx,
                Action.REQUEST_DENIED,
                request,
                at=now,
                actor=approver_id,
                reason=decision.reason,
            )
        tx.commit()
    return DecisionResult(request, decision)


@dataclass(frozen=True)
class IssueResult:
    request: AccessRequest
    grant: Grant | None
    credential: IssuedCredential | None = None
    error: str | None = None


def issue_access(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
) -> IssueResult:
    """Issue the one credential of an APPROVED request; any further call is a no-op.

    The grant is written (ISSUING) and committed under the request's row lock before Vault is
    called, and grants are unique per request, so double clicks, Slack retries and replicas
    can never issue twice. The credential comes back to the caller for private delivery only.
    """
    now = clock()
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        existing = tx.grants.get_for_request(request.id)
        if request.state is not RequestState.APPROVED or existing is not None:
            return IssueResult(request, existing)
        incident = incident_by_id(tx, request.incident_id)
        incident.require_open()
        grant = Grant(
            id=f"G-{random_token()}",
            request_id=request.id,
            incident_id=request.incident_id,
            resource=request.resource,
            requester_id=request.requester_id,
            created_at=now,
            ends_at=now + request.duration,
        )
        tx.grants.add(grant)
        record_for_grant(
            tx, Action.GRANT_ISSUING, grant, at=now, actor=None, ends_at=utc_iso(grant.ends_at)
        )
        tx.commit()

    try:
        credential = broker.issue(grant=grant, resource=policy.resource(grant.resource), now=now)
    except CredentialError as error:
        return _record_issue_failure(uow=uow, grant_id=grant.id, error=error.message, now=clock())
    return _record_issued(
        uow=uow, broker=broker, grant_id=grant.id, credential=credential, clock=clock
    )


def _record_issue_failure(
    *, uow: UnitOfWorkFactory, grant_id: str, error: str, now: datetime
) -> IssueResult:
    with uow() as tx:
        grant = _grant(tx, grant_id, for_update=True)
        request = request_by_id(tx, grant.request_id, for_update=True)
        grant.mark_failed(error=error, now=now)
        tx.grants.save(grant)
        record_for_grant(tx, Action.GRANT_ISSUE_FAILED, grant, at=now, actor=None, error=error)
        if request.state is RequestState.APPROVED:
            request.fail(now=now, error=error)
            tx.requests.save(request)
            record_for_request(tx, Action.REQUEST_FAILED, request, at=now, actor=None, error=error)
        tx.commit()
    return IssueResult(request, grant, error=error)


def _record_issued(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    grant_id: str,
    credential: IssuedCredential,
    clock: Callable[[], datetime],
) -> IssueResult:
    now = clock()
    with uow() as tx:
        grant = _grant(tx, grant_id, for_update=True)
        request = request_by_id(tx, grant.request_id, for_update=True)
        incident = incident_by_id(tx, grant.incident_id)
        still_wanted = (
            grant.status is GrantStatus.ISSUING
            and request.state is RequestState.APPROVED
            and incident.is_open
        )
        if still_wanted:
            request.activate(incident=incident, now=now, credential_ends_at=credential.expires_at)
            assert request.ends_at is not None
            grant.mark_issued(
                lease_id=credential.lease_id,
                token_accessor=credential.token_accessor,
                ends_at=request.ends_at,
                now=now,
            )
            tx.requests.save(request)
        else:
            # Closed or cancelled while Vault was issuing: keep the ids so it can be revoked.
            grant.attach_credential(
                lease_id=credential.lease_id, token_accessor=credential.token_accessor
            )
            grant.request_revocation(now=now, reason="no longer wanted when issued")
        tx.grants.save(grant)
        record_for_grant(
            tx,
            Action.GRANT_ISSUED,
            grant,
            at=now,
            actor=None,
            lease_id=grant.lease_id,
            token_accessor=grant.token_accessor,
            ends_at=utc_iso(grant.ends_at),
        )
        tx.commit()
    if not still_wanted:
        revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)
        return IssueResult(request, grant)
    return IssueResult(request, grant, credential)


def revoke_grant(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    grant_id: str,
    clock: Callable[[], datetime],
) -> Grant:
    """Ask Vault to revoke a REVOKING grant and record its confirmation, or the failure."""
    with uow() as tx:
        grant = _grant(tx, grant_id)
    if grant.status is not GrantStatus.REVOKING:
        return grant
    if not grant.has_credential:
        return grant  # still being issued: the issuing path revokes it once Vault answers
    try:
        confirmed_at: datetime | None = broker.revoke(grant=grant)
        error = None
    except CredentialError as failure:
        confirmed_at, error = None, failure.message
    now = clock()
    with uow() as tx:
        grant = _grant(tx, grant_id, for_update=True)
        if grant.status is not GrantStatus.REVOKING:
            return grant
        if confirmed_at is not None:
            grant.confirm_revoked(confirmed_at=confirmed_at)
            record_for_grant(
                tx,
                Action.GRANT_REVOKED,
                grant,
                at=now,
                actor=None,
                confirmed_at=utc_iso(confirmed_at),
            )
        else:
            grant.revocation_failed(error=error or "revocation not confirmed")
            record_for_grant(
                tx,
                Action.GRANT_REVOCATION_FAILED,
                grant,
                at=now,
                actor=None,
                error=grant.last_error,
                attempts=grant.revoke_attempts,
            )
        tx.grants.save(grant)
        tx.commit()
    return grant


def cancel_request(
    *, uow: UnitOfWorkFactory, request_id: str, by_user: str, now: datetime
) -> AccessRequest:
    """The requester withdraws a request that has not been issued."""
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        request.cancel(by_user=by_user, now=now)
        tx.requests.save(request)
        record_for_request(
            tx,
            Action.REQUEST_CANCELLED,
            request,
            at=now,
            actor=by_user,
            reason="cancelled by requester",
        )
        tx.commit()
    return request


def revoke_access(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    by_user: str,
    clock: Callable[[], datetime],
) -> Grant:
    """End ACTIVE access early: the requester, the commander or one of its approvers may."""
    now = clock()
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        incident = incident_by_id(tx, request.incident_id)
        _require_may_revoke(request, incident, by_user, policy)
        if request.state is not RequestState.ACTIVE:
            raise InvalidState(f"Request {request.id} is {request.state.value}, not active.")
        grant = tx.grants.get_for_request(request.id, for_update=True)
        if grant is None:
            raise NotFound(f"Request {request.id} has no credential to revoke.")
        reason = f"revoked by {by_user}"
        request.revoke(now=now, by_user=by_user, reason=reason)
        tx.requests.save(request)
        record_for_request(
            tx, Action.REQUEST_REVOKED, request, at=now, actor=by_user, reason=reason
        )
        end_grant(tx, grant, now=now, actor=by_user, reason=reason)
        tx.commit()
    return revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)


def expire_access(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
) -> AccessRequest:
    """End ACTIVE access whose time is up, then have Vault revoke and confirm. Idempotent."""
    now = clock()
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        if request.state is not RequestState.ACTIVE or request.ends_at is None:
            return request
        if now < request.ends_at:
            return request
        grant = tx.grants.get_for_request(request.id, for_update=True)
        request.expire(now=now)
        tx.requests.save(request)
        record_for_request(
            tx, Action.REQUEST_EXPIRED, request, at=now, actor=None, reason="expired"
        )
        if grant is not None:
            end_grant(tx, grant, now=now, actor=None, reason="expired")
        tx.commit()
    if grant is not None:
        revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)
    return request


def _require_may_revoke(
    request: AccessRequest, incident: Incident, user: str, policy: AccessPolicy
) -> None:
    allowed = {request.requester_id, incident.commander_id} | request.eligible_approvers
    if user not in allowed and not policy.is_admin(user):
        raise NotAllowed(
            f"Only the requester <@{request.requester_id}>, the commander "
            f"<@{incident.commander_id}> or an approver of {request.resource} can revoke it."
        )


def _grant(tx: UnitOfWork, grant_id: str, *, for_update: bool = False) -> Grant:
    grant = tx.grants.get(grant_id, for_update=for_update)
    if grant is None:
        raise NotFound(f"There is no grant {grant_id}.")
    return grant
