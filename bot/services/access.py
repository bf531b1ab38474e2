"""Access use cases: file a request, decide it, issue the credential, cancel, revoke."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain import events
from bot.domain.access import (
    AccessRequest,
    Decision,
    RequestState,
    Verdict,
    file_request,
    new_request_id,
)
from bot.domain.durations import format_duration, parse_duration
from bot.domain.eligibility import Resolution, labelled_approvers, policy_for_request
from bot.domain.errors import InvalidState, NotAllowed, NotFound
from bot.domain.grant import Grant
from bot.domain.incident import Incident
from bot.domain.lifecycle import EXPIRED_REASON, Access
from bot.domain.ports import CredentialBroker, PrivateMessage, UnitOfWork, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.domain.wording import Person, Wording
from bot.services.common import (
    about_request,
    access_of,
    held_incident,
    incident_for_channel,
    lock_request,
    random_token,
    record_access,
    request_by_id,
)
from bot.services.eligibility import settle_on_call
from bot.services.issuing import revoke_grant


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
    break_glass: bool = False,
    resolution: Resolution | None = None,
) -> AccessRequest:
    """File a request in the incident that owns `channel_id`: PENDING, or APPROVED at once when
    the requester is on call in the resource's auto-approve group (`resolution`). With
    `break_glass`, APPROVED at once and reviewed by the approvers afterwards."""
    rule = policy.resource(resource.strip())
    requested = parse_duration(duration) if duration else None
    found = resolution or Resolution()

    def record_filing(tx: UnitOfWork) -> AccessRequest:
        # Held, not only read: a close waits for this filing, or this filing sees it closed.
        incident = held_incident(tx, incident_for_channel(tx, channel_id).id)
        policy_now = policy_for_request(policy, found, commander_id=incident.commander_id)
        request = file_request(
            request_id=new_request_id(random_token()),
            incident=incident,
            policy=policy_now,
            resource=rule,
            requester_id=requester_id,
            duration=requested,
            reason=reason,
            now=now,
            break_glass=break_glass,
        )
        request.approver_labels = labelled_approvers(
            policy_now, rule, found, requester_id=requester_id
        )
        tx.requests.add(request)
        tx.audit.append(
            events.RequestFiled(
                **about_request(request),
                at=now,
                actor=requester_id,
                resource=request.resource,
                duration=format_duration(request.duration),
                reason=request.reason,
                approvals_required=request.approvals_required,
                approvers=tuple(sorted(request.possible_approvers)),
                break_glass=request.break_glass,
            )
        )
        if request.break_glass:
            tx.audit.append(
                events.BreakGlassUsed(
                    **about_request(request),
                    at=now,
                    actor=requester_id,
                    reviewers=tuple(sorted(request.possible_approvers)),
                    reviews_required=request.approvals_required,
                )
            )
        else:
            settle_on_call(tx, request, rule=rule, policy=policy_now, resolution=found, now=now)
        return request

    return uow.run(record_filing)


@dataclass(frozen=True)
class DecisionResult:
    request: AccessRequest
    decision: Decision
    revoke_grant_id: str | None = None  # a denied break-glass grant, for Vault to revoke
    newly_reviewed: bool = False  # this decision completed a break-glass review

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
    """Record an approval or a denial, under a lock on the request (its incident held)."""

    def record_decision(tx: UnitOfWork) -> DecisionResult:
        incident, request = lock_request(tx, request_id)
        incident.require_open()
        # A break-glass deny ends the grant too: lock it now, before anything is recorded.
        access = access_of(tx, request) if request.break_glass else Access(request)
        decision, ended = access.decide(
            approver_id=approver_id, verdict=verdict, reason=reason, now=now
        )
        tx.requests.add_decision(decision)
        tx.requests.save(request)
        tx.audit.append(
            events.DecisionRecorded(
                **about_request(request),
                at=now,
                actor=approver_id,
                verdict=verdict.value,
                reason=decision.reason,
                approvals=len(request.approvers_so_far),
                approvals_required=request.approvals_required,
            )
        )
        revoke_grant_id, newly_reviewed = None, False
        if request.break_glass:
            # decide() refuses a review once reviewed: a review date now is this decision's.
            newly_reviewed = request.reviewed_at is not None
            if newly_reviewed:
                tx.audit.append(
                    events.BreakGlassConfirmed(
                        **about_request(request),
                        at=now,
                        actor=None,
                        approvers=tuple(request.approvers_so_far),
                    )
                )
            # A deny ended it: revoked once issued (AccessEnded), cancelled before.
            record_access(tx, access, ended)
            revoke_grant_id = next(
                (e.grant_id for e in ended if isinstance(e, events.RevocationRequested)), None
            )
        elif request.state is RequestState.APPROVED:
            tx.audit.append(
                events.RequestApproved(
                    **about_request(request),
                    at=now,
                    actor=None,
                    approvers=tuple(request.approvers_so_far),
                )
            )
        elif request.state is RequestState.DENIED:
            tx.audit.append(
                events.RequestDenied(
                    **about_request(request), at=now, actor=approver_id, reason=decision.reason
                )
            )
        return DecisionResult(request, decision, revoke_grant_id, newly_reviewed)

    return uow.run(record_decision)


def cancel_request(
    *, uow: UnitOfWorkFactory, request_id: str, by_user: str, now: datetime
) -> AccessRequest:
    """The requester withdraws a request that has not been issued."""

    def record_cancel(tx: UnitOfWork) -> AccessRequest:
        _, request = lock_request(tx, request_id)
        request.cancel(by_user=by_user, now=now)
        tx.requests.save(request)
        tx.audit.append(
            events.RequestCancelled(
                **about_request(request), at=now, actor=by_user, reason="cancelled by requester"
            )
        )
        return request

    return uow.run(record_cancel)


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
    grant = record_revocation(
        uow=uow, policy=policy, request_id=request_id, by_user=by_user, now=clock()
    )
    return revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)


def record_revocation(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    request_id: str,
    by_user: str,
    now: datetime,
) -> Grant:
    """Commit the end of ACTIVE access, its grant left REVOKING for Vault (`revoke_grant`, or
    the sweep's retries when this process stops first). No Vault call: one short transaction."""

    def record_revoke(tx: UnitOfWork) -> Grant:
        incident, request = lock_request(tx, request_id)
        _require_may_revoke(request, incident, by_user, policy)
        if request.state is not RequestState.ACTIVE:
            raise InvalidState(f"Request {request.id} is {request.state.value}, not active.")
        access = access_of(tx, request)
        if access.grant is None:
            raise NotFound(f"Request {request.id} has no credential to revoke.")
        ended = access.end(
            events.EndCause.REVOKED, now=now, by=by_user, reason=f"revoked by {by_user}"
        )
        record_access(tx, access, ended)
        return access.grant

    return uow.run(record_revoke)


def expire_access(
    *,
    uow: UnitOfWorkFactory,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
) -> AccessRequest | None:
    """End ACTIVE access whose time is up, then have Vault revoke and confirm.

    None when this call did nothing: not due (e.g. extended), already ended, or another
    worker holds the request's row (SKIP LOCKED), so each expiry is done, and told, once.
    """
    now = clock()

    def record_expiry(tx: UnitOfWork) -> tuple[AccessRequest, Grant | None] | None:
        seen = tx.requests.get(request_id.strip().upper())
        if seen is None or seen.state is not RequestState.ACTIVE:
            return None
        held_incident(tx, seen.incident_id)  # the lock order: the incident first
        request = tx.requests.get(seen.id, skip_locked=True)
        if request is None or request.state is not RequestState.ACTIVE:
            return None
        if request.ends_at is None or now < request.ends_at:
            return None
        access = access_of(tx, request)
        ended = access.end(events.EndCause.EXPIRED, now=now, by=None, reason=EXPIRED_REASON)
        record_access(tx, access, ended)
        return request, access.grant

    expired = uow.run(record_expiry)
    if expired is None:
        return None
    request, grant = expired
    if grant is not None:
        revoke_grant(uow=uow, broker=broker, grant_id=grant.id, clock=clock)
    return request


def _require_may_revoke(
    request: AccessRequest, incident: Incident, user: str, policy: AccessPolicy
) -> None:
    allowed = {request.requester_id, incident.commander_id} | request.eligible_approvers
    if user not in allowed and not policy.is_admin(user):
        raise NotAllowed(
            Wording(
                "Only the requester ",
                Person(request.requester_id),
                ", the commander ",
                Person(incident.commander_id),
                f" or an approver of {request.resource} can revoke it.",
            )
        )


def attach_request_card(*, uow: UnitOfWorkFactory, request_id: str, card_ts: str) -> None:
    """Remember the request's approval card, so it can be updated in place."""
    with uow() as tx:
        request = request_by_id(tx, request_id)
        tx.cards.attach_to_request(request.id, card_ts)
        tx.commit()


def request_card(*, uow: UnitOfWorkFactory, request_id: str) -> str | None:
    """The ts of the request's approval card, once posted."""
    with uow() as tx:
        return tx.cards.of_request(request_by_id(tx, request_id).id)


def keep_private_message(*, uow: UnitOfWorkFactory, message: PrivateMessage) -> None:
    """Remember where a direct message about a request is, so it is redrawn in place when the
    request is decided or its access ends."""
    with uow() as tx:
        tx.cards.keep_private_message(message)
        tx.commit()


def private_messages(*, uow: UnitOfWorkFactory, request_id: str) -> Sequence[PrivateMessage]:
    """The direct messages kept for a request (tasks, reminders, the credential message)."""
    with uow() as tx:
        return tx.cards.private_messages(request_id)


def warn_expiry(
    *, uow: UnitOfWorkFactory, policy: AccessPolicy, request_id: str, now: datetime
) -> bool:
    """Record the one warning that the access ends soon (`incident.expiry_warning` before
    its end); False when it is not due (warned already, ended, extended since)."""
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        try:
            ends_at = request.warn_expiry(now=now, before=policy.incident.expiry_warning)
        except InvalidState:
            return False
        tx.requests.save(request)
        tx.audit.append(
            events.ExpiryWarned(**about_request(request), at=now, actor=None, ends_at=ends_at)
        )
        tx.commit()
    return True


def get_request(*, uow: UnitOfWorkFactory, request_id: str) -> AccessRequest:
    with uow() as tx:
        return request_by_id(tx, request_id)


@dataclass(frozen=True)
class MyAccess:
    pending: Sequence[AccessRequest]
    active: Sequence[AccessRequest]
    to_decide: Sequence[AccessRequest]


def list_my_access(*, uow: UnitOfWorkFactory, user: str) -> MyAccess:
    """The caller's pending requests, active access, and the requests waiting on them."""
    with uow() as tx:
        return MyAccess(
            pending=tx.requests.list_for_requester(
                user, states=[RequestState.PENDING, RequestState.APPROVED]
            ),
            active=tx.requests.list_for_requester(user, states=[RequestState.ACTIVE]),
            to_decide=tx.requests.list_pending_for_approver(user),
        )


def time_out_request(
    *, uow: UnitOfWorkFactory, policy: AccessPolicy, request_id: str, now: datetime
) -> AccessRequest:
    """A PENDING request nobody decided within `incident.request_timeout`. Idempotent."""

    def record_time_out(tx: UnitOfWork) -> AccessRequest:
        _, request = lock_request(tx, request_id)
        timeout = policy.incident.request_timeout
        if request.state is not RequestState.PENDING or now < request.requested_at + timeout:
            return request
        request.time_out(now=now, timeout=timeout)
        tx.requests.save(request)
        tx.audit.append(
            events.RequestTimedOut(
                **about_request(request), at=now, actor=None, reason="nobody decided in time"
            )
        )
        return request

    return uow.run(record_time_out)


def remind_approvers(
    *, uow: UnitOfWorkFactory, policy: AccessPolicy, request_id: str, now: datetime
) -> frozenset[str]:
    """Mark the one reminder of a pending request; returns whom to remind (empty: not due)."""
    with uow() as tx:
        request = request_by_id(tx, request_id, for_update=True)
        try:
            waiting = request.remind(now=now, after=policy.incident.reminder_after)
        except InvalidState:
            return frozenset()
        tx.requests.save(request)
        tx.audit.append(
            events.ApproversReminded(
                **about_request(request), at=now, actor=None, approvers=tuple(sorted(waiting))
            )
        )
        tx.commit()
    return waiting
