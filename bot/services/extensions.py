"""Extending active access in place: ask, decide, then renew the same credential in Vault.

The approval is committed before Vault is called; the new end is recorded only after Vault has
renewed. A crash in between leaves an APPROVED extension that `retry_extensions` applies later,
and in the meantime access ends at its old end, never later than recorded.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import events
from bot.domain.access import AccessRequest, Decision, RequestState, Verdict
from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import CredentialError, CredentialUnavailable, InvalidState
from bot.domain.extension import (
    Extension,
    ExtensionState,
    ask_extension,
    extension_headroom,
    new_extension_id,
)
from bot.domain.ports import Claim, CredentialBroker, UnitOfWork, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.services.common import (
    about_request,
    access_of,
    claim_key,
    lock_request,
    random_token,
    record_access,
    request_by_id,
)


@dataclass(frozen=True)
class ExtensionResult:
    request: AccessRequest
    extension: Extension
    decision: Decision | None = None
    retrying: bool = False  # Vault was unavailable; the sweep applies it later


def request_extension(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    request_id: str,
    by_user: str,
    duration: str,
    reason: str | None,
    now: datetime,
) -> ExtensionResult:
    """The requester asks to keep ACTIVE access longer; approvers decide on the card."""
    wanted = parse_duration(duration)

    def record_ask(tx: UnitOfWork) -> ExtensionResult:
        incident, request = lock_request(tx, request_id)
        extension = ask_extension(
            request,
            extension_id=new_extension_id(random_token()),
            incident=incident,
            policy=policy,
            rule=policy.resource(request.resource),
            by_user=by_user,
            duration=wanted,
            reason=reason,
            now=now,
        )
        tx.requests.save(request)
        tx.audit.append(
            events.ExtensionAsked(
                **about_request(request),
                at=now,
                actor=by_user,
                extension_id=extension.id,
                duration=format_duration(extension.duration),
                reason=extension.reason,
                ends_at=request.ends_at,
                approvals_required=extension.approvals_required,
                approvers=tuple(sorted(extension.possible_approvers)),
            )
        )
        return ExtensionResult(request, extension)

    return uow.run(record_ask)


def headroom(*, uow: UnitOfWorkFactory, policy: AccessPolicy, request_id: str) -> timedelta:
    """How much longer this ACTIVE access may still be extended (zero when it may not)."""
    with uow() as tx:
        request = request_by_id(tx, request_id)
    if request.state is not RequestState.ACTIVE or request.activated_at is None:
        return timedelta(0)
    assert request.ends_at is not None
    rule = policy.resource(request.resource)
    return extension_headroom(
        activated_at=request.activated_at, ends_at=request.ends_at, max_ttl=rule.max_ttl
    )


def decide_extension(
    *,
    uow: UnitOfWorkFactory,
    request_id: str,
    approver_id: str,
    verdict: Verdict,
    reason: str | None,
    now: datetime,
) -> ExtensionResult:
    """Record one decision on the request's open extension, under the request's row lock."""

    def record_decision(tx: UnitOfWork) -> ExtensionResult:
        incident, request = lock_request(tx, request_id)
        extension = request.open_extension
        if extension is None:
            raise InvalidState(f"Request {request.id} has no extension waiting for a decision.")
        incident.require_open()
        decision = extension.decide(
            approver_id=approver_id, verdict=verdict, reason=reason, now=now
        )
        tx.requests.add_extension_decision(extension.id, decision)
        tx.requests.save(request)
        tx.audit.append(
            events.ExtensionDecided(
                **about_request(request),
                at=now,
                actor=approver_id,
                extension_id=extension.id,
                verdict=verdict.value,
                reason=decision.reason,
                approvals=len(extension.approvers_so_far),
            )
        )
        if extension.state is ExtensionState.APPROVED:
            tx.audit.append(
                events.ExtensionApproved(
                    **about_request(request),
                    at=now,
                    actor=None,
                    extension_id=extension.id,
                    approvers=tuple(extension.approvers_so_far),
                )
            )
        elif extension.state is ExtensionState.DENIED:
            tx.audit.append(
                events.ExtensionDenied(
                    **about_request(request),
                    at=now,
                    actor=approver_id,
                    extension_id=extension.id,
                    reason=decision.reason,
                )
            )
        return ExtensionResult(request, extension, decision)

    return uow.run(record_decision)


def apply_extension(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
) -> ExtensionResult | None:
    """Renew the credential of an APPROVED extension, then record the new end. Idempotent.

    Under the request's renewal claim, waited for: a worker that finds it held waits, then
    reads the extension as the holder left it (applied: nothing to do), so Vault is asked once.
    Skipping instead would lose a renewal when the holder read the extension just before the
    approval that completed it committed. None when there is nothing to apply."""
    with uow.claim(claim_key("renew", request_id), wait=True) as mine:
        if not mine:
            return None
        return _renew(
            uow=uow, policy=policy, broker=broker, request_id=request_id, clock=clock, claim=mine
        )


def _renew(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    request_id: str,
    clock: Callable[[], datetime],
    claim: Claim,
) -> ExtensionResult | None:
    with uow() as tx:
        request = request_by_id(tx, request_id)
        grant = tx.grants.get_for_request(request.id)
    extension = request.open_extension
    if extension is None or extension.state is not ExtensionState.APPROVED:
        return None  # none approved, or access ended meanwhile (which cancels it)
    # An approved extension is only ever open on ACTIVE access, which has its grant.
    assert grant is not None and request.activated_at and request.ends_at
    cap = request.activated_at + policy.resource(request.resource).max_ttl
    until = min(request.ends_at + extension.duration, cap)
    now = clock()
    claim.ensure_held()
    try:
        granted = broker.renew(grant=grant, until=until, now=now)
        error = None
    except CredentialError as failure:
        if isinstance(failure, CredentialUnavailable):
            return ExtensionResult(request, extension, retrying=True)
        granted, error = None, failure.message
    return _record_renewal(uow, request.id, extension.id, granted, error, clock())


def _record_renewal(
    uow: UnitOfWorkFactory,
    request_id: str,
    extension_id: str,
    granted: datetime | None,
    error: str | None,
    now: datetime,
) -> ExtensionResult:
    def record_renewal(tx: UnitOfWork) -> ExtensionResult:
        _, request = lock_request(tx, request_id)
        extension = next(e for e in request.extensions if e.id == extension_id)
        if extension.state is not ExtensionState.APPROVED:
            return ExtensionResult(request, extension)  # recorded elsewhere, or access ended
        access = access_of(tx, request)
        previous_end = request.ends_at
        assert access.grant is not None and previous_end is not None  # as in apply_extension
        failure = error
        if granted is not None and granted <= previous_end:
            failure = "Vault would not renew the credential past its current end"
        if failure is not None or granted is None:
            failure = failure or "Vault did not renew the credential"
            extension.fail(error=failure, now=now)
            tx.requests.save(request)
            tx.audit.append(
                events.ExtensionFailed(
                    **about_request(request),
                    at=now,
                    actor=None,
                    extension_id=extension.id,
                    error=failure,
                )
            )
            return ExtensionResult(request, extension)
        record_access(tx, access, access.extend(extension, new_end=granted, now=now))
        return ExtensionResult(request, extension)

    return uow.run(record_renewal)


def retry_extensions(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    broker: CredentialBroker,
    clock: Callable[[], datetime],
    limit: int = 50,
) -> list[ExtensionResult]:
    """Apply approved extensions Vault could not renew yet (down, or a crash in between)."""
    with uow() as tx:
        due = tx.requests.list_with_open_extensions(ExtensionState.APPROVED, limit)
    applied = []
    for request_id in due:
        result = apply_extension(
            uow=uow, policy=policy, broker=broker, request_id=request_id, clock=clock
        )
        if result is not None and not result.retrying:
            applied.append(result)
    return applied
