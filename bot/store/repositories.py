"""Repositories: explicit mapping between table rows and the domain's dataclasses.

Every repository works on the unit of work's connection, inside its transaction. `for_update`
renders `SELECT ... FOR UPDATE` on PostgreSQL; SQLite ignores it, as BEGIN IMMEDIATE already
serializes writers there. The sweep queries add SKIP LOCKED, so replicas never pick the same row.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, insert, literal, or_, select

from bot.domain.access import RequestState
from bot.domain.grant import Grant, GrantStatus
from bot.domain.ports import AccessEnd
from bot.store.claims import unclaimed
from bot.store.rows import insert_unique, locked, update_by_id
from bot.store.tables import (
    GRANT_REQUEST_UNIQUE,
    access_requests,
    grants,
)


class SqlGrantRepository:
    def __init__(
        self,
        connection: Connection,
        *,
        claims_held_here: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        """`claims_held_here`: the claim keys this process holds (`LocalClaims.held_here`)."""
        self._connection = connection
        self._claims_held_here = claims_held_here

    def add(self, grant: Grant) -> None:
        """Insert a grant; a second grant for the same request is refused with AlreadyDone."""
        insert_unique(
            self._connection,
            insert(grants).values(id=grant.id, **_grant_values(grant)),
            constraint=GRANT_REQUEST_UNIQUE,
            duplicate=f"Request {grant.request_id} already has a credential.",
        )

    def get(self, grant_id: str, *, for_update: bool = False) -> Grant | None:
        statement = select(grants).where(grants.c.id == grant_id)
        return self._one(locked(statement, for_update))

    def get_for_request(self, request_id: str, *, for_update: bool = False) -> Grant | None:
        """The request's live grant: any but a failed attempt (there is at most one)."""
        statement = select(grants).where(
            grants.c.request_id == request_id, grants.c.status != GrantStatus.FAILED.value
        )
        return self._one(locked(statement, for_update))

    def list_for_request(self, request_id: str) -> Sequence[Grant]:
        """Every attempt for a request, failed ones included, oldest first."""
        statement = select(grants).where(grants.c.request_id == request_id)
        return self._all(statement.order_by(grants.c.created_at, grants.c.id))

    def save(self, grant: Grant) -> None:
        update_by_id(self._connection, grants, grant.id, _grant_values(grant))

    def list_for_incident(
        self,
        incident_id: str,
        *,
        statuses: Sequence[GrantStatus] | None = None,
        ids: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> Sequence[Grant]:
        """Oldest first; `for_update` locks them all in that one statement (the close)."""
        statement = select(grants).where(grants.c.incident_id == incident_id)
        if statuses is not None:
            statement = statement.where(grants.c.status.in_([s.value for s in statuses]))
        if ids is not None:
            statement = statement.where(grants.c.id.in_(ids))
        ordered = statement.order_by(grants.c.created_at, grants.c.id)
        return self._all(locked(ordered, for_update))

    def list_due(self, now: datetime, limit: int) -> Sequence[AccessEnd]:
        """Active access whose end (its request's) has come, soonest first, its grants locked
        for this sweep (SKIP LOCKED)."""
        statement = (
            _active_access_ending(now).limit(limit).with_for_update(skip_locked=True, of=grants)
        )
        return self._ends(statement)

    def list_active_ending(self, before: datetime, limit: int) -> Sequence[AccessEnd]:
        """Active access ending at or before `before`, soonest first, without locking it."""
        return self._ends(_active_access_ending(before).limit(limit))

    def count_in(self, statuses: Sequence[GrantStatus], *, resource: str | None = None) -> int:
        """Counted without locks: rows another transaction holds still count."""
        statement = (
            select(func.count())
            .select_from(grants)
            .where(grants.c.status.in_([s.value for s in statuses]))
        )
        if resource is not None:
            statement = statement.where(grants.c.resource == resource)
        return int(self._connection.execute(statement).scalar_one())

    def list_due_revocations(self, now: datetime, limit: int) -> Sequence[Grant]:
        """REVOKING grants Vault should be asked about now (never tried, or their backoff has
        passed), longest due first, locked for this sweep (SKIP LOCKED)."""
        due_at = func.coalesce(grants.c.revoke_retry_at, grants.c.revoke_requested_at)
        statement = (
            select(grants)
            .where(
                grants.c.status == GrantStatus.REVOKING.value,
                or_(grants.c.revoke_retry_at.is_(None), grants.c.revoke_retry_at <= now),
            )
            .order_by(due_at, grants.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._all(statement)

    def list_by_status(self, statuses: Sequence[GrantStatus], limit: int) -> Sequence[Grant]:
        """Grants in any of `statuses` (revocation retries, reconcile), locked with SKIP LOCKED."""
        statement = (
            select(grants)
            .where(grants.c.status.in_([s.value for s in statuses]))
            .order_by(grants.c.created_at, grants.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._all(statement)

    def list_unclaimed_issuing(self, claim_prefix: str, limit: int) -> Sequence[Grant]:
        """ISSUING grants whose issue claim (`claim_prefix` and the request id in capitals, as
        `claim_key` names it) nobody holds: their issuer died before Vault's answer was
        recorded. Oldest first, locked for this sweep (SKIP LOCKED)."""
        key = literal(claim_prefix) + func.upper(grants.c.request_id)
        statement = (
            select(grants)
            .where(
                grants.c.status == GrantStatus.ISSUING.value,
                unclaimed(
                    key,
                    postgres=self._connection.dialect.name == "postgresql",
                    held_here=self._claims_held_here(),
                ),
            )
            .order_by(grants.c.created_at, grants.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=grants)
        )
        return self._all(statement)

    def _one(self, statement: Select[Any]) -> Grant | None:
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _grant_from_row(row)

    def _all(self, statement: Select[Any]) -> list[Grant]:
        return [_grant_from_row(row) for row in self._connection.execute(statement)]

    def _ends(self, statement: Select[Any]) -> list[AccessEnd]:
        return [
            AccessEnd(row.request_id, row.ends_at) for row in self._connection.execute(statement)
        ]


def _active_access_ending(before: datetime) -> Select[Any]:
    """(request id, end) of ACTIVE grants whose request ends at or before `before`, soonest
    first: the end is the request's, the one record of it."""
    return (
        select(grants.c.request_id, access_requests.c.ends_at)
        .join(access_requests, access_requests.c.id == grants.c.request_id)
        .where(
            grants.c.status == GrantStatus.ACTIVE.value,
            access_requests.c.state == RequestState.ACTIVE.value,
            access_requests.c.ends_at <= before,
        )
        .order_by(access_requests.c.ends_at, grants.c.id)
    )


def _grant_values(grant: Grant) -> dict[str, Any]:
    return {
        "request_id": grant.request_id,
        "incident_id": grant.incident_id,
        "resource": grant.resource,
        "requester_id": grant.requester_id,
        "created_at": grant.created_at,
        "status": grant.status.value,
        "lease_id": grant.lease_id,
        "token_accessor": grant.token_accessor,
        "wrapping_accessor": grant.wrapping_accessor,
        "issued_at": grant.issued_at,
        "revoke_requested_at": grant.revoke_requested_at,
        "revoked_at": grant.revoked_at,
        "revoke_attempts": grant.revoke_attempts,
        "revoke_retry_at": grant.revoke_retry_at,
        "last_error": grant.last_error,
        "retry_at": grant.retry_at,
    }


def _grant_from_row(row: Row[Any]) -> Grant:
    return Grant(
        id=row.id,
        request_id=row.request_id,
        incident_id=row.incident_id,
        resource=row.resource,
        requester_id=row.requester_id,
        created_at=row.created_at,
        status=GrantStatus(row.status),
        lease_id=row.lease_id,
        token_accessor=row.token_accessor,
        wrapping_accessor=row.wrapping_accessor,
        issued_at=row.issued_at,
        revoke_requested_at=row.revoke_requested_at,
        revoked_at=row.revoked_at,
        revoke_attempts=row.revoke_attempts,
        revoke_retry_at=row.revoke_retry_at,
        last_error=row.last_error,
        retry_at=row.retry_at,
    )
