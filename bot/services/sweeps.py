"""Periodic work that keeps our records and Vault in agreement. Each step is idempotent.

`reconcile_vault` runs at start and periodically:
1. a grant in ISSUING that no live process is issuing (its claim is free: the issuer died while
   Vault was issuing) becomes a failed attempt; its request stays APPROVED and is issued again
   by `retry_issues` at once;
2. a token Gatehouse made (found by its metadata) that no live grant or open incident owns is
   revoked, and with it every lease it created;
3. leases under a resource's path when no grant of that resource is live are revoked.
Vault does not reveal the lease id inside a wrapped response, so a wrapped credential is
tracked through the grant token that owns it: revoking that token revokes the lease.
A dry run makes the same decisions and changes nothing: the report lists what it would do.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from bot.domain import events
from bot.domain.errors import CredentialError
from bot.domain.grant import Grant, GrantStatus
from bot.domain.lifecycle import Access
from bot.domain.ports import (
    CredentialBroker,
    CredentialInventory,
    LiveToken,
    UnitOfWork,
    UnitOfWorkFactory,
)
from bot.domain.rules import AccessPolicy
from bot.services.common import claim_key, lock_request, record_access
from bot.services.issuing import INTERRUPTED_ISSUE, revoke_grant, revoke_incident_tokens

_LIVE = (GrantStatus.ISSUING, GrantStatus.ACTIVE, GrantStatus.REVOKING)
SWEEP_BATCH = 100


@dataclass
class ReconcileReport:
    """What reconciliation did; after a dry run, what it would have done."""

    interrupted_grants: list[str] = field(default_factory=list)
    revoked_tokens: list[str] = field(default_factory=list)
    revoked_leases: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False


def reconcile_vault(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    inventory: CredentialInventory,
    clock: Callable[[], datetime],
    dry_run: bool = False,
) -> ReconcileReport:
    report = ReconcileReport(dry_run=dry_run)
    report.interrupted_grants += fail_interrupted_issues(uow=uow, clock=clock, dry_run=dry_run)
    try:
        tokens = inventory.live_tokens()
    except CredentialError as error:
        report.errors.append(error.message)
        tokens = []
    for token in tokens:
        if not _token_is_ours_to_keep(uow, token, clock(), remember=not dry_run):
            _revoke_orphan(
                uow,
                clock,
                report,
                token.incident_id,
                accessor=token.accessor,
                revoke=partial(inventory.revoke_token, accessor=token.accessor),
            )
    for rule in policy.resources.values():
        if rule.vault.path is None or _resource_has_live_grants(uow, rule.name):
            continue
        try:
            leases = inventory.list_leases(rule.vault.path)
        except CredentialError as error:
            report.errors.append(error.message)
            continue
        for lease_id in leases:
            _revoke_orphan(
                uow,
                clock,
                report,
                None,
                lease_id=lease_id,
                revoke=partial(inventory.revoke_lease, lease_id=lease_id),
            )
    return report


def fail_interrupted_issues(
    *, uow: UnitOfWorkFactory, clock: Callable[[], datetime], dry_run: bool = False
) -> list[str]:
    """Grants left in ISSUING by a process that died before Vault's answer was recorded become
    failed attempts, to be issued again. Only those whose claim is free are read, so grants
    being issued now, however many, never crowd out one left behind. Returns their ids (with
    `dry_run`, fails none)."""
    with uow() as tx:
        interrupted = tx.grants.list_unclaimed_issuing(claim_key("issue", ""), SWEEP_BATCH)
    failed = []
    for grant in interrupted:  # the claim is still taken: an issuer may have started since
        with uow.claim(claim_key("issue", grant.request_id)) as nobody_is_issuing:
            if nobody_is_issuing and (dry_run or _fail_interrupted(uow, grant.id, clock())):
                failed.append(grant.id)
    return failed


def _fail_interrupted(uow: UnitOfWorkFactory, grant_id: str, now: datetime) -> bool:
    def record_failure(tx: UnitOfWork) -> bool:
        seen = tx.grants.get(grant_id)
        if seen is None or seen.status is not GrantStatus.ISSUING:
            return False
        # The lock order: the incident, the request, then the grant.
        _, request = lock_request(tx, seen.request_id)
        grant = tx.grants.get(grant_id, for_update=True)
        if grant is None or grant.status is not GrantStatus.ISSUING:
            return False
        access = Access(request, grant)
        # Vault was not the cause: an approved request is issued again at once.
        record_access(
            tx, access, access.issue_failed(error=INTERRUPTED_ISSUE, retry_at=now, now=now)
        )
        return True

    return uow.run(record_failure)


def _token_is_ours_to_keep(
    uow: UnitOfWorkFactory, token: LiveToken, now: datetime, *, remember: bool
) -> bool:
    with uow() as tx:
        if token.grant_id is None:
            incident = tx.incidents.get(token.incident_id)
            if incident is None or not incident.is_open:
                return False
            if remember:
                _remember_incident_token(tx, token, now)
            return True
        grant = tx.grants.get(token.grant_id)
    if grant is None:
        return False
    # ISSUING here is being issued now: the interrupted ones were failed just before.
    return grant.status in _LIVE


def _remember_incident_token(tx: UnitOfWork, token: LiveToken, now: datetime) -> None:
    """An open incident's token whose accessor never reached our records: record it now."""
    known = {accessor for _, accessor in tx.vault_tokens.list_unrevoked(token.incident_id)}
    if token.accessor not in known:
        tx.vault_tokens.add(incident_id=token.incident_id, accessor=token.accessor, now=now)
        tx.commit()


def _resource_has_live_grants(uow: UnitOfWorkFactory, resource: str) -> bool:
    """Counted without SKIP LOCKED: a grant another worker holds is live all the same."""
    with uow() as tx:
        return tx.grants.count_in(list(_LIVE), resource=resource) > 0


def _revoke_orphan(
    uow: UnitOfWorkFactory,
    clock: Callable[[], datetime],
    report: ReconcileReport,
    incident_id: str | None,
    *,
    revoke: Callable[[], datetime],
    accessor: str | None = None,
    lease_id: str | None = None,
) -> None:
    if report.dry_run:
        (report.revoked_tokens if accessor else report.revoked_leases).append(
            accessor or lease_id or ""
        )
        return
    try:
        confirmed_at = revoke()
    except CredentialError as error:
        report.errors.append(error.message)
        return
    with uow() as tx:
        if accessor is not None:
            tx.vault_tokens.mark_revoked([accessor], at=confirmed_at)
        tx.audit.append(
            events.OrphanRevoked(
                at=clock(),
                actor=None,
                incident_id=incident_id,
                accessor=accessor,
                lease_id=lease_id,
                confirmed_at=confirmed_at,
            )
        )
        tx.commit()
    (report.revoked_tokens if accessor else report.revoked_leases).append(
        accessor or lease_id or ""
    )


def ending_before(*, uow: UnitOfWorkFactory, until: datetime) -> list[tuple[str, datetime]]:
    """(request id, end) of the active access ending by `until`: their expiry timers."""
    with uow() as tx:
        return [
            (ending.request_id, ending.ends_at)
            for ending in tx.grants.list_active_ending(until, limit=100_000)
        ]


def due_expiries(*, uow: UnitOfWorkFactory, now: datetime) -> list[str]:
    """Requests whose access has reached its end (their ACTIVE grants due)."""
    with uow() as tx:
        return [ending.request_id for ending in tx.grants.list_due(now, SWEEP_BATCH)]


def due_timeouts(*, uow: UnitOfWorkFactory, policy: AccessPolicy, now: datetime) -> list[str]:
    """PENDING requests older than the policy's request timeout."""
    older_than = now - policy.incident.request_timeout
    with uow() as tx:
        return [request.id for request in tx.requests.list_due_pending(older_than, SWEEP_BATCH)]


def retry_revocations(
    *, uow: UnitOfWorkFactory, broker: CredentialBroker, clock: Callable[[], datetime]
) -> list[Grant]:
    """Ask Vault again for closed incidents' tokens still on record (first: everything under
    them goes with them), then for every revocation it has not confirmed whose backoff has
    passed. Returns the grants now confirmed revoked; grants another worker is revoking are
    left to it, as are those a close under way has not asked Vault about yet (it confirms
    them all at once; recovery finishes a close that stopped)."""
    now = clock()
    with uow() as tx:
        pending = tx.grants.list_due_revocations(now, SWEEP_BATCH)
        closing = {
            incident_id
            for incident_id in {grant.incident_id for grant in pending}
            if (incident := tx.incidents.get(incident_id)) is not None and incident.closing
        }
        closed_tokens = tx.vault_tokens.list_closed_incidents_with_unrevoked(SWEEP_BATCH)
    for incident_id in closed_tokens:
        revoke_incident_tokens(
            uow=uow, broker=broker, incident_id=incident_id, clock=clock, wait=False
        )
    return [
        grant
        for grant in (
            revoke_grant(uow=uow, broker=broker, grant_id=g.id, clock=clock, wait=False)
            for g in pending
            if g.revoke_attempts or g.incident_id not in closing
        )
        if grant.status is GrantStatus.REVOKED
    ]


def expiry_lag(*, uow: UnitOfWorkFactory, now: datetime) -> timedelta:
    """How far past its end the most overdue active access is (zero when none is due)."""
    with uow() as tx:
        due = tx.grants.list_due(now, 1)
    return max((now - ending.ends_at for ending in due), default=timedelta(0))


def count_active(*, uow: UnitOfWorkFactory) -> int:
    with uow() as tx:
        return tx.grants.count_in([GrantStatus.ACTIVE])


def due_reminders(*, uow: UnitOfWorkFactory, policy: AccessPolicy, now: datetime) -> list[str]:
    """PENDING requests past `reminder_after` whose approvers were not reminded yet."""
    older_than = now - policy.incident.reminder_after
    with uow() as tx:
        return [request.id for request in tx.requests.list_due_reminders(older_than, SWEEP_BATCH)]


def due_expiry_warnings(
    *, uow: UnitOfWorkFactory, policy: AccessPolicy, now: datetime
) -> list[str]:
    """Active access ending within `incident.expiry_warning` whose requester was not warned of
    that end yet (none when the warning is off)."""
    before = policy.incident.expiry_warning
    if before <= timedelta(0):
        return []
    with uow() as tx:
        return list(tx.requests.list_due_expiry_warnings(now, before, SWEEP_BATCH))
