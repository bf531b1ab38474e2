"""Due work is chosen by the database: exactly the due rows, soonest due first, however many
rows that are not due come first, and on PostgreSQL never a row another transaction holds."""

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from bot.domain.access import RequestState
from bot.domain.grant import Grant, GrantStatus
from bot.services import sweeps
from bot.services.common import claim_key
from bot.store import SqlUnitOfWork, SqlUnitOfWorkFactory
from bot.store.claims import _lock_number

from . import builders
from .builders import T0

NOW = T0 + timedelta(hours=1)
INCIDENT = builders.incident(1)


@pytest.fixture
def tx(uow_factory: SqlUnitOfWorkFactory) -> Iterator[SqlUnitOfWork]:
    with uow_factory() as tx:
        tx.incidents.add(INCIDENT)
        yield tx


def _request(tx: SqlUnitOfWork, number: int, **changes: object) -> str:
    request = builders.access_request(INCIDENT.id, number, **changes)
    tx.requests.add(request)
    return request.id


def _grant(tx: SqlUnitOfWork, number: int, **changes: object) -> str:
    request = builders.access_request(INCIDENT.id, number, state=RequestState.ACTIVE)
    tx.requests.add(request)
    grant = builders.grant(request, number, **changes)
    tx.grants.add(grant)
    return grant.id


def _revoking(tx: SqlUnitOfWork, number: int, *, asked: timedelta, retry: timedelta | None) -> str:
    return _grant(
        tx,
        number,
        status=GrantStatus.REVOKING,
        revoke_requested_at=NOW - asked,
        revoke_retry_at=None if retry is None else NOW + retry,
    )


def test_revocations_due_are_exactly_the_due_ones_longest_due_first(tx: SqlUnitOfWork) -> None:
    for number in range(1, 4):  # backing off: would fill a batch of the oldest first
        _revoking(tx, number, asked=timedelta(hours=5), retry=timedelta(minutes=number))
    retry_passed = _revoking(tx, 4, asked=timedelta(hours=2), retry=-timedelta(minutes=30))
    never_tried = _revoking(tx, 5, asked=timedelta(minutes=10), retry=None)
    retry_now = _revoking(tx, 6, asked=timedelta(hours=3), retry=timedelta(0))
    _grant(tx, 7, status=GrantStatus.ACTIVE)

    due = tx.grants.list_due_revocations(NOW, limit=3)

    assert [g.id for g in due] == [retry_passed, never_tried, retry_now]
    assert [g.id for g in tx.grants.list_due_revocations(NOW, limit=1)] == [retry_passed]


def test_reminders_due_are_pending_old_enough_and_not_reminded(tx: SqlUnitOfWork) -> None:
    older_than = NOW - timedelta(minutes=15)
    for number in range(1, 4):  # reminded already, and older than every due one
        _request(tx, number, requested_at=older_than - timedelta(hours=1), reminded_at=NOW)
    second = _request(tx, 4, requested_at=older_than - timedelta(minutes=1))
    first = _request(tx, 5, requested_at=older_than - timedelta(minutes=2))
    at_the_limit = _request(tx, 6, requested_at=older_than)
    _request(tx, 7, requested_at=older_than + timedelta(seconds=1))
    _request(tx, 8, requested_at=older_than - timedelta(hours=2), state=RequestState.APPROVED)

    due = tx.requests.list_due_reminders(older_than, limit=3)

    assert [r.id for r in due] == [first, second, at_the_limit]


def test_issue_retries_due_are_exactly_the_due_ones_soonest_first(tx: SqlUnitOfWork) -> None:
    approved_before = NOW - timedelta(seconds=15)

    def approved(number: int, at: object) -> str:
        return _request(tx, number, state=RequestState.APPROVED, state_changed_at=at)

    def failed_attempt(request_id: str, number: int, retry_in: timedelta | None) -> None:
        request = tx.requests.get(request_id)
        assert request is not None
        grant = builders.grant(request, number)
        grant.mark_failed(
            error="Vault is unavailable",
            retry_at=None if retry_in is None else NOW + retry_in,
        )
        tx.grants.add(grant)

    for number in range(1, 4):  # backing off: would fill a batch of the oldest first
        failed_attempt(approved(number, T0), number, timedelta(minutes=number))
    never_tried = approved(4, approved_before - timedelta(minutes=1))
    approved(5, approved_before + timedelta(seconds=1))  # approved just now: its issuer runs
    retry_passed = approved(6, T0)
    failed_attempt(retry_passed, 6, -timedelta(minutes=5))
    failed_attempt(retry_passed, 7, -timedelta(minutes=2))
    being_issued = approved(8, T0)
    failed_attempt(being_issued, 8, -timedelta(minutes=5))
    tx.grants.add(builders.grant(builders.access_request(INCIDENT.id, 8), 9))  # ISSUING now
    final_failure = approved(10, T0)
    failed_attempt(final_failure, 10, None)

    due = tx.requests.list_due_issue_retries(NOW, approved_before=approved_before, limit=2)

    assert list(due) == [retry_passed, never_tried]


def test_closed_incidents_with_unrevoked_tokens(tx: SqlUnitOfWork) -> None:
    closed, revoked_only = builders.closed_incident(2), builders.closed_incident(3)
    tx.incidents.add(closed)
    tx.incidents.add(revoked_only)
    tx.vault_tokens.add(incident_id=INCIDENT.id, accessor="open-1", now=T0)
    tx.vault_tokens.add(incident_id=closed.id, accessor="closed-1", now=T0)
    tx.vault_tokens.add(incident_id=closed.id, accessor="closed-2", now=T0)
    tx.vault_tokens.add(incident_id=revoked_only.id, accessor="revoked-1", now=T0)
    tx.vault_tokens.mark_revoked(["revoked-1"], at=NOW)

    assert tx.vault_tokens.list_closed_incidents_with_unrevoked(limit=10) == [closed.id]


def test_issues_being_issued_do_not_starve_an_interrupted_one(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    """150 grants in ISSUING whose issuers are alive (their claims held, here or by another
    replica's session) come before the one whose issuer died; only that one is failed."""
    being_issued = 150
    with uow_factory() as setup:
        setup.incidents.add(INCIDENT)
        claimed = [
            _grant(setup, number, created_at=T0 + timedelta(seconds=number))
            for number in range(1, being_issued + 1)
        ]
        interrupted = _grant(setup, 999, created_at=T0 + timedelta(hours=1))
        setup.commit()
        keys = [claim_key("issue", grant.request_id) for grant in _grants(setup, claimed)]

    with ExitStack() as holding:
        if engine.dialect.name == "postgresql":  # another replica's claims, seen in pg_locks
            replica = holding.enter_context(engine.connect())
            for key in keys:
                replica.execute(text("SELECT pg_advisory_lock(:n)"), {"n": _lock_number(key)})
            replica.commit()
        else:  # this process's claims
            for key in keys:
                assert holding.enter_context(uow_factory.claim(key))

        assert sweeps.fail_interrupted_issues(uow=uow_factory, clock=lambda: NOW) == [interrupted]

    with uow_factory() as tx:
        statuses = {grant.id: grant.status for grant in _grants(tx, [*claimed, interrupted])}
    assert statuses.pop(interrupted) is GrantStatus.FAILED
    assert set(statuses.values()) == {GrantStatus.ISSUING}


def _grants(tx: SqlUnitOfWork, ids: list[str]) -> list[Grant]:
    found = [tx.grants.get(grant_id) for grant_id in ids]
    return [grant for grant in found if grant is not None]


@pytest.mark.postgres
def test_due_rows_another_transaction_holds_are_skipped(postgres_engine: Engine) -> None:
    uow = SqlUnitOfWorkFactory(postgres_engine)
    with uow() as tx:
        tx.incidents.add(INCIDENT)
        held = _revoking(tx, 1, asked=timedelta(hours=2), retry=None)
        free = _revoking(tx, 2, asked=timedelta(hours=1), retry=None)
        held_request = _request(tx, 3, requested_at=T0)
        free_request = _request(tx, 4, requested_at=T0 + timedelta(minutes=1))
        tx.commit()

    with uow() as other_worker:
        assert [g.id for g in other_worker.grants.list_due_revocations(NOW, 1)] == [held]
        assert [r.id for r in other_worker.requests.list_due_reminders(NOW, 1)] == [held_request]
        with uow() as sweep:
            assert [g.id for g in sweep.grants.list_due_revocations(NOW, 10)] == [free]
            assert [r.id for r in sweep.requests.list_due_reminders(NOW, 10)] == [free_request]
