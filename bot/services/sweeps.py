"""Periodic work that keeps our records and Vault in agreement. Each step is idempotent.

`reconcile_vault` runs at start and periodically:
1. a grant stuck in ISSUING past the grace period (the process died while Vault was issuing)
   becomes a failed attempt; its request stays APPROVED and is issued again by `retry_issues`;
2. a token Gatehouse made (found by its metadata) that no live grant or open incident owns is
   revoked, and with it every lease it created;
3. leases under a resource's path when no grant of that resource is live are revoked.
Vault does not reveal the lease id inside a wrapped response, so a wrapped credential is
tracked through the grant token that owns it: revoking that token revokes the lease.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from bot.domain.audit import Action, utc_iso
from bot.domain.errors import CredentialError
from bot.domain.grant import GrantStatus
from bot.domain.ports import CredentialInventory, LiveToken, UnitOfWork, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.services.common import record, record_for_grant

ISSUING_GRACE = timedelta(minutes=2)
_LIVE = (GrantStatus.ISSUING, GrantStatus.ACTIVE, GrantStatus.REVOKING)


@dataclass
class ReconcileReport:
    interrupted_grants: list[str] = field(default_factory=list)
    revoked_tokens: list[str] = field(default_factory=list)
    revoked_leases: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def reconcile_vault(
    *,
    uow: UnitOfWorkFactory,
    policy: AccessPolicy,
    inventory: CredentialInventory,
    clock: Callable[[], datetime],
) -> ReconcileReport:
    report = ReconcileReport()
    _fail_interrupted_issues(uow, clock(), report)
    try:
        tokens = inventory.live_tokens()
    except CredentialError as error:
        report.errors.append(error.message)
        tokens = []
    for token in tokens:
        if not _token_is_ours_to_keep(uow, token, clock()):
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


def _fail_interrupted_issues(
    uow: UnitOfWorkFactory, now: datetime, report: ReconcileReport
) -> None:
    with uow() as tx:
        stuck = [
            grant
            for grant in tx.grants.list_by_status([GrantStatus.ISSUING], limit=100)
            if grant.created_at <= now - ISSUING_GRACE
        ]
        for grant in stuck:
            error = "interrupted before Vault's answer was recorded"
            grant.mark_failed(error=error, now=now)
            tx.grants.save(grant)
            record_for_grant(
                tx, Action.GRANT_ISSUE_FAILED, grant, at=now, actor=None, error=error, retrying=True
            )
            report.interrupted_grants.append(grant.id)
        tx.commit()


def _token_is_ours_to_keep(uow: UnitOfWorkFactory, token: LiveToken, now: datetime) -> bool:
    with uow() as tx:
        if token.grant_id is None:
            incident = tx.incidents.get(token.incident_id)
            if incident is None or not incident.is_open:
                return False
            _remember_incident_token(tx, token, now)
            return True
        grant = tx.grants.get(token.grant_id)
    if grant is None:
        return False
    if grant.status is GrantStatus.ISSUING:
        return grant.created_at > now - ISSUING_GRACE
    return grant.status in (GrantStatus.ACTIVE, GrantStatus.REVOKING)


def _remember_incident_token(tx: UnitOfWork, token: LiveToken, now: datetime) -> None:
    """An open incident's token whose accessor never reached our records: record it now."""
    known = {accessor for _, accessor in tx.vault_tokens.list_unrevoked(token.incident_id)}
    if token.accessor not in known:
        tx.vault_tokens.add(incident_id=token.incident_id, accessor=token.accessor, now=now)
        tx.commit()


def _resource_has_live_grants(uow: UnitOfWorkFactory, resource: str) -> bool:
    with uow() as tx:
        return any(g.resource == resource for g in tx.grants.list_by_status(list(_LIVE), 1000))


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
    try:
        confirmed_at = revoke()
    except CredentialError as error:
        report.errors.append(error.message)
        return
    with uow() as tx:
        if accessor is not None:
            tx.vault_tokens.mark_revoked([accessor], at=confirmed_at)
        record(
            tx,
            Action.VAULT_ORPHAN_REVOKED,
            at=clock(),
            actor=None,
            incident_id=incident_id,
            accessor=accessor,
            lease_id=lease_id,
            confirmed_at=utc_iso(confirmed_at),
        )
        tx.commit()
    (report.revoked_tokens if accessor else report.revoked_leases).append(
        accessor or lease_id or ""
    )
