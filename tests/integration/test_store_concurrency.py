"""Several writers at once: the audit chain stays contiguous, sweeps never share a row."""

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from bot.domain.access import RequestState
from bot.domain.audit import verify_chain
from bot.domain.events import DecisionRecorded
from bot.domain.grant import GrantStatus
from bot.store import SqlUnitOfWorkFactory

from . import builders
from .builders import T0


def _run_together(threads: int, work: Callable[[int], None]) -> None:
    """Start `threads` workers at the same instant and re-raise the first failure."""
    barrier = threading.Barrier(threads)

    def start(worker: int) -> None:
        barrier.wait()
        work(worker)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(start, worker) for worker in range(threads)]:
            future.result()


def _append_from_threads(factory: SqlUnitOfWorkFactory, threads: int, appends: int) -> None:
    def work(worker: int) -> None:
        for number in range(appends):
            with factory() as uow:
                uow.audit.append(
                    DecisionRecorded(
                        at=T0 + timedelta(milliseconds=number),
                        actor=f"U0WORKER{worker}",
                        request_id=f"R-{number}",
                        verdict="approve",
                    )
                )
                uow.commit()

    _run_together(threads, work)

    with factory() as uow:
        events = list(uow.audit.events())
    assert [event.seq for event in events] == list(range(1, threads * appends + 1))
    assert verify_chain(events).ok
    written = Counter((e.entry.actor, e.entry.request_id) for e in events)
    assert set(written.values()) == {1}
    assert len(written) == threads * appends


@pytest.mark.postgres
def test_concurrent_appends_on_postgres_keep_the_chain_contiguous(
    postgres_engine: Engine,
) -> None:
    _append_from_threads(SqlUnitOfWorkFactory(postgres_engine), threads=8, appends=500)


def test_concurrent_appends_keep_the_chain_contiguous(uow_factory: SqlUnitOfWorkFactory) -> None:
    _append_from_threads(uow_factory, threads=4, appends=100)


def _add_due_grants(factory: SqlUnitOfWorkFactory, count: int) -> None:
    incident = builders.incident()
    with factory() as uow:
        uow.incidents.add(incident)
        for number in range(1, count + 1):
            request = builders.access_request(
                incident.id,
                number,
                state=RequestState.ACTIVE,
                ends_at=T0 - timedelta(seconds=number),
            )
            uow.requests.add(request)
            uow.grants.add(builders.grant(request, number, status=GrantStatus.ACTIVE))
        uow.commit()


@pytest.mark.postgres
def test_two_sweeps_holding_their_rows_never_get_the_same_one(postgres_engine: Engine) -> None:
    factory = SqlUnitOfWorkFactory(postgres_engine)
    _add_due_grants(factory, 10)
    with factory() as uow:  # and ten requests pending since long ago
        for number in range(11, 21):
            uow.requests.add(builders.access_request(builders.incident().id, number))
        uow.commit()

    with factory() as first, factory() as second:
        first_grants = {due.request_id for due in first.grants.list_due(T0, limit=4)}
        second_grants = {due.request_id for due in second.grants.list_due(T0, limit=10)}
        cutoff = T0 + timedelta(days=1)
        first_requests = {r.id for r in first.requests.list_due_pending(cutoff, limit=3)}
        second_requests = {r.id for r in second.requests.list_due_pending(cutoff, limit=10)}

    assert (len(first_grants), len(second_grants)) == (4, 6)
    assert not first_grants & second_grants
    assert (len(first_requests), len(second_requests)) == (3, 7)
    assert not first_requests & second_requests


def test_sweeps_running_at_once_handle_each_due_grant_exactly_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    _add_due_grants(uow_factory, 40)
    handled: list[str] = []
    lock = threading.Lock()

    def sweep(_worker: int) -> None:
        while True:
            with uow_factory() as uow:
                due = uow.grants.list_due(T0, limit=3)
                if not due:
                    return
                for ending in due:
                    grant = uow.grants.get_for_request(ending.request_id, for_update=True)
                    assert grant is not None
                    grant.request_revocation(now=T0)
                    uow.grants.save(grant)
                uow.commit()
            with lock:
                handled.extend(ending.request_id for ending in due)

    _run_together(4, sweep)

    assert sorted(handled) == sorted(f"R-{n:06d}" for n in range(1, 41))


def test_transactions_of_several_events_interleave_into_one_chain(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """A transaction locks the chain and reads its head once; the next transaction of the same
    unit of work, and every other writer's, reads the head again."""

    def work(worker: int) -> None:
        with uow_factory() as uow:
            for number in range(20):
                for verdict in ("approve", "deny", "approve"):
                    uow.audit.append(
                        DecisionRecorded(
                            at=T0,
                            actor=f"U0WORKER{worker}",
                            request_id=f"R-{number}",
                            verdict=verdict,
                        )
                    )
                uow.commit()  # the unit of work goes on in a new transaction

    _run_together(4, work)

    with uow_factory() as uow:
        events = list(uow.audit.events())
    assert [event.seq for event in events] == list(range(1, 4 * 20 * 3 + 1))
    assert verify_chain(events).ok
    for first in range(0, len(events), 3):  # each transaction's three events stay together
        assert len({(e.entry.actor, e.entry.request_id) for e in events[first : first + 3]}) == 1
