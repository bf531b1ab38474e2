"""Claims on PostgreSQL: one holder among replicas and threads, and gone with a killed holder."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, literal, select, text

from bot.domain.access import RequestState, Verdict
from bot.domain.errors import ClaimLost
from bot.domain.grant import Grant, GrantStatus
from bot.domain.ports import IssuedCredential
from bot.domain.rules import ResourceRule
from bot.services import access, issuing, sweeps
from bot.store import SqlUnitOfWorkFactory
from bot.store.claims import (
    PostgresClaims,
    _lock_halves,
    _lock_number,
    _previous_lock_number,
    _sql_lock_number,
)
from tests.integration.test_services_on_store import POLICY, T0, clock, open_and_request
from tests.unit.fakes import FakeBroker

pytestmark = pytest.mark.postgres

HOLD_AND_SLEEP = """
import sys, time
from bot.store import create_engine_for
from bot.store.claims import PostgresClaims
claims = PostgresClaims(create_engine_for(sys.argv[1]))
with claims.hold("issue:R-CRASHED") as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(60)
"""


def test_one_holder_among_replicas_and_threads(postgres_engine: Engine) -> None:
    replica, other_replica = PostgresClaims(postgres_engine), PostgresClaims(postgres_engine)
    with replica.hold("revoke:G-1") as mine:
        assert mine
        with other_replica.hold("revoke:G-1") as theirs, replica.hold("revoke:G-1") as again:
            assert not theirs and not again
        with other_replica.hold("revoke:G-2") as unrelated:
            assert unrelated
    with other_replica.hold("revoke:G-1") as free_now:
        assert free_now


def test_postgresql_computes_the_same_lock_number_as_python(postgres_engine: Engine) -> None:
    """The sweeps find free claims in SQL: its number for a key must be the one locked."""
    keys = ["issue:R-7K3QF2AB", "request:R-AAAAAAAA", "incident:INC-20261123-X", "é:ü", ""]
    with postgres_engine.connect() as connection:
        for key in keys:
            computed = connection.execute(select(_sql_lock_number(literal(key)))).scalar_one()
            assert computed == _lock_number(key), key


def test_a_replica_of_the_previous_release_keeps_a_claim_out_and_sees_it_held(
    postgres_engine: Engine,
) -> None:
    """The previous release locked another number for the same key; a claim takes both, so
    replicas of either release exclude each other during a rolling upgrade."""
    key = "issue:R-ROLLING"
    claims = PostgresClaims(postgres_engine)
    with postgres_engine.connect() as old_replica:
        lock = text("SELECT pg_try_advisory_lock(:n)")
        assert old_replica.execute(lock, {"n": _previous_lock_number(key)}).scalar()
        with claims.hold(key) as mine:
            assert not mine
        assert _holder_pids(postgres_engine, key) == set()  # the refused claim let go of both
        old_replica.execute(text("SELECT pg_advisory_unlock_all()"))
        with claims.hold(key) as mine:
            assert mine
            assert not old_replica.execute(lock, {"n": _previous_lock_number(key)}).scalar()
    with claims.hold(key) as again:
        assert again


def test_a_waiting_worker_gets_the_claim_when_it_is_given_back(postgres_engine: Engine) -> None:
    replica, other_replica = PostgresClaims(postgres_engine), PostgresClaims(postgres_engine)
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with replica.hold("incident:INC-1") as mine:
            assert mine
            held.set()
            time.sleep(0.3)
            order.append("first done")

    worker = threading.Thread(target=first)
    worker.start()
    assert held.wait(5)
    with other_replica.hold("incident:INC-1", wait=True) as mine:
        order.append("second in" if mine else "second refused")
    worker.join()
    assert order == ["first done", "second in"]


def test_a_claim_dies_with_a_killed_holder(postgres_engine: Engine) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_SLEEP, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        claims = PostgresClaims(postgres_engine)
        with claims.hold("issue:R-CRASHED") as mine:
            assert not mine
        holder.kill()  # SIGKILL: no finally, no unlock
        holder.wait(timeout=10)
        with claims.hold("issue:R-CRASHED", wait=True) as mine:
            assert mine
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _holder_pids(engine: Engine, key: str) -> set[int]:
    """Server sessions holding the advisory lock of `key`."""
    high, low = _lock_halves(_lock_number(key))
    with engine.connect() as connection:
        return set(
            connection.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": high, "low": low},
            ).scalars()
        )


def _terminate_holder(engine: Engine, key: str) -> None:
    """End the server session holding the advisory lock of `key`, as a lost connection would."""
    (pid,) = _holder_pids(engine, key)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


class RecordingBroker(FakeBroker):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        self.calls.append(f"issue {grant.id}")
        return super().issue(grant=grant, resource=resource, until=until, now=now)

    def revoke(self, *, grant: Grant) -> datetime:
        self.calls.append(f"revoke {grant.id}")
        return super().revoke(grant=grant)


def _approved_request(uow: SqlUnitOfWorkFactory) -> tuple[str, str]:
    incident_id, request_id = open_and_request(uow)
    access.decide_request(
        uow=uow,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    return incident_id, request_id


def _lose_claim_at(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, point: str, key: Callable[[], str]
) -> None:
    """Terminate the claim's connection when the work reaches `point`, between two steps."""

    def at_step(name: str) -> None:
        if name == point:
            _terminate_holder(engine, key())

    monkeypatch.setattr(issuing, "crash_point", at_step)


def test_a_lost_issue_claim_stops_before_vault_and_the_issue_is_finished_later(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = SqlUnitOfWorkFactory(postgres_engine)
    broker = RecordingBroker()
    _, request_id = _approved_request(uow)
    _lose_claim_at(
        monkeypatch, postgres_engine, "issue.intent_recorded", lambda: f"issue:{request_id}"
    )

    with pytest.raises(ClaimLost):
        issuing.issue_access(
            uow=uow, policy=POLICY, broker=broker, request_id=request_id, clock=clock
        )

    assert broker.calls == []
    with uow() as tx:
        (grant,) = tx.grants.list_for_request(request_id)
    assert grant.status is GrantStatus.ISSUING  # as if its process had died there
    # The claim is free again, so recovery fails the attempt and it is issued once.
    assert sweeps.fail_interrupted_issues(uow=uow, clock=clock) == [grant.id]
    monkeypatch.undo()
    issued = issuing.issue_access(
        uow=uow, policy=POLICY, broker=broker, request_id=request_id, clock=clock
    )
    assert issued.request.state is RequestState.ACTIVE
    assert len(broker.calls) == 1 and broker.calls[0].startswith("issue ")


def test_a_lost_revoke_claim_stops_before_vault_and_the_revocation_stays_pending(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = SqlUnitOfWorkFactory(postgres_engine)
    broker = RecordingBroker()
    _, request_id = _approved_request(uow)
    issued = issuing.issue_access(
        uow=uow, policy=POLICY, broker=broker, request_id=request_id, clock=clock
    )
    assert issued.grant is not None
    grant_id = issued.grant.id
    with uow() as tx:
        grant = tx.grants.get(grant_id, for_update=True)
        assert grant is not None
        grant.request_revocation(now=clock())
        tx.grants.save(grant)
        tx.commit()
    broker.calls.clear()
    _lose_claim_at(
        monkeypatch, postgres_engine, "revoke.intent_recorded", lambda: f"revoke:{grant_id}"
    )

    with pytest.raises(ClaimLost):
        issuing.revoke_grant(uow=uow, broker=broker, grant_id=grant_id, clock=clock)

    assert broker.calls == []
    with uow() as tx:
        still = tx.grants.get(grant_id)
    assert still is not None and still.status is GrantStatus.REVOKING


def test_a_claim_keeps_its_own_connection_for_its_whole_duration(
    postgres_engine: Engine,
) -> None:
    """Transactions run while a claim is held never get the claim's session, and the lock
    stays on that one session until the claim is given back."""
    uow = SqlUnitOfWorkFactory(postgres_engine)
    with uow.claim("issue:R-KEPT") as mine:
        assert mine
        holder = _holder_pids(postgres_engine, "issue:R-KEPT")
        seen = set()
        for _ in range(10):
            with uow() as tx:
                session = tx.incidents._connection  # the transaction's own session
                seen.add(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            mine.ensure_held()
        assert len(holder) == 1 and holder.isdisjoint(seen)
        assert _holder_pids(postgres_engine, "issue:R-KEPT") == holder
    assert _holder_pids(postgres_engine, "issue:R-KEPT") == set()
    with pytest.raises(ClaimLost):
        mine.ensure_held()  # given back: nothing proceeds on it any more
