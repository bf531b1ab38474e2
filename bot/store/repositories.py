"""Repositories: explicit mapping between table rows and the domain's dataclasses.

Every repository works on the unit of work's connection, inside its transaction. `for_update`
renders `SELECT ... FOR UPDATE` on PostgreSQL; SQLite ignores it, as BEGIN IMMEDIATE already
serializes writers there. The sweep queries add SKIP LOCKED, so replicas never pick the same row.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select

from bot.domain.access import AccessRequest, Decision, RequestState, Verdict
from bot.domain.grant import Grant, GrantStatus
from bot.store.rows import insert_unique, locked, update_by_id
from bot.store.tables import (
    DECISION_UNIQUE,
    GRANT_REQUEST_UNIQUE,
    access_requests,
    decisions,
    grants,
)


class SqlAccessRequestRepository:
    """Access requests with their decisions, which are always loaded together."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, request: AccessRequest) -> None:
        self._connection.execute(
            insert(access_requests).values(id=request.id, **_request_values(request))
        )
        for decision in request.decisions:
            self.add_decision(decision)

    def get(
        self, request_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> AccessRequest | None:
        """`skip_locked`: None when another transaction holds the row (PostgreSQL)."""
        statement = select(access_requests).where(access_requests.c.id == request_id)
        if skip_locked:
            statement = statement.with_for_update(skip_locked=True)
        found = self._load(locked(statement, for_update and not skip_locked))
        return found[0] if found else None

    def save(self, request: AccessRequest) -> None:
        """Write the request's own fields; decisions are written by `add_decision`."""
        update_by_id(self._connection, access_requests, request.id, _request_values(request))

    def add_decision(self, decision: Decision) -> None:
        insert_unique(
            self._connection,
            insert(decisions).values(
                request_id=decision.request_id,
                approver_id=decision.approver_id,
                verdict=decision.verdict.value,
                decided_at=decision.decided_at,
                reason=decision.reason,
            ),
            constraint=DECISION_UNIQUE,
            duplicate=f"You already decided request {decision.request_id}.",
        )

    def list_for_incident(
        self, incident_id: str, *, states: Sequence[RequestState] | None = None
    ) -> Sequence[AccessRequest]:
        statement = select(access_requests).where(access_requests.c.incident_id == incident_id)
        if states is not None:
            statement = statement.where(access_requests.c.state.in_([s.value for s in states]))
        return self._load(statement.order_by(access_requests.c.requested_at, access_requests.c.id))

    def list_for_requester(
        self, requester_id: str, *, states: Sequence[RequestState]
    ) -> Sequence[AccessRequest]:
        statement = (
            select(access_requests)
            .where(
                access_requests.c.requester_id == requester_id,
                access_requests.c.state.in_([s.value for s in states]),
            )
            .order_by(access_requests.c.requested_at, access_requests.c.id)
        )
        return self._load(statement)

    def list_pending_for_approver(self, approver_id: str) -> Sequence[AccessRequest]:
        statement = (
            select(access_requests)
            .where(access_requests.c.state == RequestState.PENDING.value)
            .order_by(access_requests.c.requested_at, access_requests.c.id)
        )
        return [
            request
            for request in self._load(statement)
            if approver_id in request.possible_approvers
            and request.decision_by(approver_id) is None
        ]

    def list_in_state(self, state: RequestState, limit: int) -> Sequence[AccessRequest]:
        """Requests in `state`, oldest first, locked for one sweep (SKIP LOCKED)."""
        statement = (
            select(access_requests)
            .where(access_requests.c.state == state.value)
            .order_by(access_requests.c.requested_at, access_requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._load(statement)

    def list_due_pending(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        """Pending requests filed at or before `older_than`, oldest first, locked for this sweep.

        Rows another transaction holds are skipped, not waited for.
        """
        statement = (
            select(access_requests)
            .where(
                access_requests.c.state == RequestState.PENDING.value,
                access_requests.c.requested_at <= older_than,
            )
            .order_by(access_requests.c.requested_at, access_requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._load(statement)

    def list_notify_pending(self, limit: int) -> Sequence[AccessRequest]:
        """Requests whose last outcome is not yet shown in Slack, oldest change first."""
        statement = (
            select(access_requests)
            .where(access_requests.c.notify_pending)
            .order_by(access_requests.c.state_changed_at, access_requests.c.id)
            .limit(limit)
        )
        return self._load(statement)

    def _load(self, statement: Select[Any]) -> list[AccessRequest]:
        rows = self._connection.execute(statement).all()
        by_request = self._decisions_for(row.id for row in rows)
        return [_request_from_row(row, by_request[row.id]) for row in rows]

    def _decisions_for(self, request_ids: Iterable[str]) -> dict[str, list[Decision]]:
        wanted = list(request_ids)
        found: dict[str, list[Decision]] = defaultdict(list)
        if not wanted:
            return found
        statement = (
            select(decisions)
            .where(decisions.c.request_id.in_(wanted))
            .order_by(decisions.c.decided_at, decisions.c.id)
        )
        for row in self._connection.execute(statement):
            found[row.request_id].append(
                Decision(
                    request_id=row.request_id,
                    approver_id=row.approver_id,
                    verdict=Verdict(row.verdict),
                    decided_at=row.decided_at,
                    reason=row.reason,
                )
            )
        return found


def _request_values(request: AccessRequest) -> dict[str, Any]:
    return {
        "incident_id": request.incident_id,
        "resource": request.resource,
        "requester_id": request.requester_id,
        "reason": request.reason,
        "duration_seconds": request.duration,
        "requested_at": request.requested_at,
        "approvals_required": request.approvals_required,
        "eligible_approvers": request.eligible_approvers,
        "state": request.state.value,
        "state_changed_at": request.state_changed_at,
        "activated_at": request.activated_at,
        "ends_at": request.ends_at,
        "ended_at": request.ended_at,
        "end_reason": request.end_reason,
        "ended_by": request.ended_by,
        "card_ts": request.card_ts,
        "reminded_at": request.reminded_at,
        "notify_pending": request.notify_pending,
    }


def _request_from_row(row: Row[Any], request_decisions: list[Decision]) -> AccessRequest:
    return AccessRequest(
        id=row.id,
        incident_id=row.incident_id,
        resource=row.resource,
        requester_id=row.requester_id,
        reason=row.reason,
        duration=row.duration_seconds,
        requested_at=row.requested_at,
        approvals_required=row.approvals_required,
        eligible_approvers=row.eligible_approvers,
        state=RequestState(row.state),
        state_changed_at=row.state_changed_at,
        decisions=request_decisions,
        activated_at=row.activated_at,
        ends_at=row.ends_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        ended_by=row.ended_by,
        card_ts=row.card_ts,
        reminded_at=row.reminded_at,
        notify_pending=row.notify_pending,
    )


class SqlGrantRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

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
        self, incident_id: str, *, statuses: Sequence[GrantStatus] | None = None
    ) -> Sequence[Grant]:
        statement = select(grants).where(grants.c.incident_id == incident_id)
        if statuses is not None:
            statement = statement.where(grants.c.status.in_([s.value for s in statuses]))
        return self._all(statement.order_by(grants.c.created_at, grants.c.id))

    def list_due(self, now: datetime, limit: int) -> Sequence[Grant]:
        """Active grants whose end has come, soonest first, locked for this sweep (SKIP LOCKED)."""
        statement = (
            select(grants)
            .where(grants.c.status == GrantStatus.ACTIVE.value, grants.c.ends_at <= now)
            .order_by(grants.c.ends_at, grants.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._all(statement)

    def list_active_ending(self, before: datetime, limit: int) -> Sequence[Grant]:
        """Active grants ending at or before `before`, soonest first, without locking them."""
        statement = (
            select(grants)
            .where(grants.c.status == GrantStatus.ACTIVE.value, grants.c.ends_at <= before)
            .order_by(grants.c.ends_at, grants.c.id)
            .limit(limit)
        )
        return self._all(statement)

    def list_by_status(self, statuses: Sequence[GrantStatus], limit: int) -> Sequence[Grant]:
        """Grants in any of `statuses` (revocation retries, reconcile), locked with SKIP LOCKED."""
        statement = (
            select(grants)
            .where(grants.c.status.in_([s.value for s in statuses]))
            .order_by(grants.c.ends_at, grants.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._all(statement)

    def _one(self, statement: Select[Any]) -> Grant | None:
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _grant_from_row(row)

    def _all(self, statement: Select[Any]) -> list[Grant]:
        return [_grant_from_row(row) for row in self._connection.execute(statement)]


def _grant_values(grant: Grant) -> dict[str, Any]:
    return {
        "request_id": grant.request_id,
        "incident_id": grant.incident_id,
        "resource": grant.resource,
        "requester_id": grant.requester_id,
        "created_at": grant.created_at,
        "ends_at": grant.ends_at,
        "status": grant.status.value,
        "lease_id": grant.lease_id,
        "token_accessor": grant.token_accessor,
        "wrapping_accessor": grant.wrapping_accessor,
        "issued_at": grant.issued_at,
        "revoke_requested_at": grant.revoke_requested_at,
        "revoke_reason": grant.revoke_reason,
        "revoked_at": grant.revoked_at,
        "revoke_attempts": grant.revoke_attempts,
        "last_error": grant.last_error,
    }


def _grant_from_row(row: Row[Any]) -> Grant:
    return Grant(
        id=row.id,
        request_id=row.request_id,
        incident_id=row.incident_id,
        resource=row.resource,
        requester_id=row.requester_id,
        created_at=row.created_at,
        ends_at=row.ends_at,
        status=GrantStatus(row.status),
        lease_id=row.lease_id,
        token_accessor=row.token_accessor,
        wrapping_accessor=row.wrapping_accessor,
        issued_at=row.issued_at,
        revoke_requested_at=row.revoke_requested_at,
        revoke_reason=row.revoke_reason,
        revoked_at=row.revoked_at,
        revoke_attempts=row.revoke_attempts,
        last_error=row.last_error,
    )
