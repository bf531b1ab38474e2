"""Access requests, always loaded with their decisions and extensions.

Every repository works on the unit of work's connection, inside its transaction; see
`bot.store.repositories` for how `for_update` and SKIP LOCKED behave on each database.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, exists, func, insert, or_, select

from bot.domain.access import AccessRequest, Decision, RequestState, Verdict
from bot.domain.extension import Extension, ExtensionState
from bot.domain.grant import GrantStatus
from bot.store.rows import insert_unique, locked, update_by_id
from bot.store.tables import (
    DECISION_UNIQUE,
    EXTENSION_DECISION_UNIQUE,
    access_extensions,
    access_requests,
    decisions,
    extension_decisions,
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
        """Write the request's own fields and its extensions' states; decisions are written by
        `add_decision` and `add_extension_decision`."""
        update_by_id(self._connection, access_requests, request.id, _request_values(request))
        for extension in request.extensions:
            values = _extension_values(extension)
            updated = self._connection.execute(
                access_extensions.update()
                .where(access_extensions.c.id == extension.id)
                .values(values)
            )
            if updated.rowcount == 0:
                self._connection.execute(
                    insert(access_extensions).values(id=extension.id, **values)
                )

    def add_extension_decision(self, extension_id: str, decision: Decision) -> None:
        insert_unique(
            self._connection,
            insert(extension_decisions).values(
                extension_id=extension_id,
                approver_id=decision.approver_id,
                verdict=decision.verdict.value,
                decided_at=decision.decided_at,
                reason=decision.reason,
            ),
            constraint=EXTENSION_DECISION_UNIQUE,
            duplicate=f"You already decided extension {extension_id}.",
        )

    def list_with_open_extensions(self, state: ExtensionState, limit: int) -> Sequence[str]:
        """Ids of requests with an extension in `state`, oldest first (for the sweep)."""
        statement = (
            select(access_extensions.c.request_id)
            .where(access_extensions.c.state == state.value)
            .order_by(access_extensions.c.requested_at)
            .limit(limit)
        )
        return list(dict.fromkeys(self._connection.execute(statement).scalars()))

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
        self,
        incident_id: str,
        *,
        states: Sequence[RequestState] | None = None,
        for_update: bool = False,
    ) -> Sequence[AccessRequest]:
        """Oldest first; `for_update` locks them all in that one statement (the close)."""
        statement = select(access_requests).where(access_requests.c.incident_id == incident_id)
        if states is not None:
            statement = statement.where(access_requests.c.state.in_([s.value for s in states]))
        ordered = statement.order_by(access_requests.c.requested_at, access_requests.c.id)
        return self._load(locked(ordered, for_update))

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
        waiting = [RequestState.PENDING, RequestState.APPROVED, RequestState.ACTIVE]
        statement = (
            select(access_requests)
            .where(access_requests.c.state.in_([s.value for s in waiting]))
            .order_by(access_requests.c.requested_at, access_requests.c.id)
        )
        return [r for r in self._load(statement) if r.awaits_decision_from(approver_id)]

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

    def list_due_reminders(self, older_than: datetime, limit: int) -> Sequence[AccessRequest]:
        """Pending requests filed at or before `older_than` whose approvers were not reminded
        yet, oldest first, locked for this sweep (SKIP LOCKED)."""
        statement = (
            select(access_requests)
            .where(
                access_requests.c.state == RequestState.PENDING.value,
                access_requests.c.requested_at <= older_than,
                access_requests.c.reminded_at.is_(None),
            )
            .order_by(access_requests.c.requested_at, access_requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._load(statement)

    def list_due_expiry_warnings(
        self, now: datetime, before: timedelta, limit: int
    ) -> Sequence[str]:
        """Ids of ACTIVE requests ending within `before` (and not ended yet) whose requester
        was not warned of that end, soonest first, locked for this sweep (SKIP LOCKED)."""
        ends_at, warned = access_requests.c.ends_at, access_requests.c.expiry_warned_for
        statement = (
            select(access_requests.c.id)
            .where(
                access_requests.c.state == RequestState.ACTIVE.value,
                ends_at <= now + before,
                ends_at > now,
                or_(warned.is_(None), warned != ends_at),
            )
            .order_by(ends_at, access_requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self._connection.execute(statement).scalars())

    def list_due_issue_retries(
        self, now: datetime, *, approved_before: datetime, limit: int
    ) -> Sequence[str]:
        """Ids of APPROVED requests due to be issued (again), soonest due first, locked for
        this sweep (SKIP LOCKED): every attempt failed and the last one's `retry_at` has come,
        or nobody tried yet and the request was approved at or before `approved_before`."""
        attempts = grants.alias("attempts")
        of_request = attempts.c.request_id == access_requests.c.id
        live_attempt = exists().where(of_request, attempts.c.status != GrantStatus.FAILED.value)
        any_attempt = exists().where(of_request)
        next_attempt_at = select(func.max(attempts.c.retry_at)).where(of_request).scalar_subquery()
        approved_at = func.coalesce(
            access_requests.c.state_changed_at, access_requests.c.requested_at
        )
        statement = (
            select(access_requests.c.id)
            .where(
                access_requests.c.state == RequestState.APPROVED.value,
                ~live_attempt,
                or_(
                    and_(~any_attempt, approved_at <= approved_before),
                    next_attempt_at <= now,
                ),
            )
            .order_by(func.coalesce(next_attempt_at, approved_at), access_requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self._connection.execute(statement).scalars())

    def list_awaiting_delivery(self, limit: int) -> Sequence[AccessRequest]:
        """ACTIVE requests whose credential was not yet handed over, oldest first."""
        statement = (
            select(access_requests)
            .where(
                access_requests.c.awaiting_delivery,
                access_requests.c.state == RequestState.ACTIVE.value,
            )
            .order_by(access_requests.c.state_changed_at, access_requests.c.id)
            .limit(limit)
        )
        return self._load(statement)

    def _load(self, statement: Select[Any]) -> list[AccessRequest]:
        rows = self._connection.execute(statement).all()
        ids = [row.id for row in rows]
        by_request = self._decisions_for(ids)
        extensions = self._extensions_for(ids)
        loaded = []
        for row in rows:
            request = _request_from_row(row, by_request[row.id])
            request.extensions = extensions[row.id]
            loaded.append(request)
        return loaded

    def _extensions_for(self, request_ids: list[str]) -> dict[str, list[Extension]]:
        found: dict[str, list[Extension]] = defaultdict(list)
        if not request_ids:
            return found
        rows = self._connection.execute(
            select(access_extensions)
            .where(access_extensions.c.request_id.in_(request_ids))
            .order_by(access_extensions.c.requested_at, access_extensions.c.id)
        ).all()
        votes: dict[str, list[Decision]] = defaultdict(list)
        if rows:
            statement = (
                select(extension_decisions)
                .where(extension_decisions.c.extension_id.in_([row.id for row in rows]))
                .order_by(extension_decisions.c.decided_at, extension_decisions.c.id)
            )
            by_extension = {row.id: row.request_id for row in rows}
            for vote in self._connection.execute(statement):
                votes[vote.extension_id].append(_decision(by_extension[vote.extension_id], vote))
        for row in rows:
            found[row.request_id].append(_extension_from_row(row, votes[row.id]))
        return found

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
            found[row.request_id].append(_decision(row.request_id, row))
        return found


def _decision(request_id: str, row: Row[Any]) -> Decision:
    return Decision(
        request_id=request_id,
        approver_id=row.approver_id,
        verdict=Verdict(row.verdict),
        decided_at=row.decided_at,
        reason=row.reason,
    )


def _extension_values(extension: Extension) -> dict[str, Any]:
    return {
        "request_id": extension.request_id,
        "requested_by": extension.requested_by,
        "duration_seconds": extension.duration,
        "reason": extension.reason,
        "requested_at": extension.requested_at,
        "approvals_required": extension.approvals_required,
        "eligible_approvers": extension.eligible_approvers,
        "state": extension.state.value,
        "state_changed_at": extension.state_changed_at,
        "previous_ends_at": extension.previous_ends_at,
        "new_ends_at": extension.new_ends_at,
        "note": extension.note,
    }


def _extension_from_row(row: Row[Any], votes: list[Decision]) -> Extension:
    return Extension(
        id=row.id,
        request_id=row.request_id,
        requested_by=row.requested_by,
        duration=row.duration_seconds,
        requested_at=row.requested_at,
        approvals_required=row.approvals_required,
        eligible_approvers=row.eligible_approvers,
        reason=row.reason,
        state=ExtensionState(row.state),
        state_changed_at=row.state_changed_at,
        decisions=votes,
        previous_ends_at=row.previous_ends_at,
        new_ends_at=row.new_ends_at,
        note=row.note,
    )


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
        "reminded_at": request.reminded_at,
        "break_glass": request.break_glass,
        "reviewed_at": request.reviewed_at,
        "approver_labels": dict(request.approver_labels),
        "auto_approved_because": request.auto_approved_because,
        "awaiting_delivery": request.awaiting_delivery,
        "expiry_warned_for": request.expiry_warned_for,
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
        reminded_at=row.reminded_at,
        break_glass=bool(row.break_glass),
        reviewed_at=row.reviewed_at,
        approver_labels=row.approver_labels,
        auto_approved_because=row.auto_approved_because,
        awaiting_delivery=row.awaiting_delivery,
        expiry_warned_for=row.expiry_warned_for,
    )
