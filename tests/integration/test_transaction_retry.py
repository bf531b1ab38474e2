"""`SqlUnitOfWorkFactory.run`: a transaction the database aborts because of a concurrent one
(deadlock, serialization failure) is run again whole; anything else reaches the caller."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from bot.domain.incident import Incident, Severity
from bot.services.incidents import start_incident
from bot.store import SqlUnitOfWork, SqlUnitOfWorkFactory
from bot.store.unit_of_work import TRANSACTION_ATTEMPTS, retry_pause


class Aborted(Exception):
    """Stands in for the driver's error; only its SQLSTATE matters."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def aborted(sqlstate: str) -> OperationalError:
    return OperationalError("UPDATE ...", {}, Aborted(sqlstate))


def open_incident(uow: SqlUnitOfWorkFactory, name: str) -> Incident:
    return start_incident(
        uow=uow,
        title=name,
        severity=Severity.SEV3,
        opened_by="U0ONCALL1",
        channel_id=f"C0{name.upper()}",
        channel_name=f"inc-{name}",
        now=datetime.now(UTC),
    )


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlock_victim_is_run_again_and_only_its_last_run_commits(
    uow_factory: SqlUnitOfWorkFactory, sqlstate: str
) -> None:
    incident = open_incident(uow_factory, "retried")
    runs: list[int] = []
    pauses: list[float] = []

    def body(tx: SqlUnitOfWork) -> int:
        runs.append(len(runs) + 1)
        found = tx.incidents.get(incident.id, for_update=True)
        assert found is not None
        found.title = f"renamed in run {len(runs)}"
        tx.incidents.save(found)
        if len(runs) < 3:
            raise aborted(sqlstate)
        return len(runs)

    assert uow_factory.run(body, sleep=pauses.append) == 3
    assert runs == [1, 2, 3]
    assert len(pauses) == 2 and all(0 <= p <= retry_pause(2, jitter=lambda: 1) for p in pauses)
    with uow_factory() as tx:
        stored = tx.incidents.get(incident.id)
    assert stored is not None and stored.title == "renamed in run 3"


def test_other_errors_and_the_last_failure_reach_the_caller_with_nothing_committed(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    incident = open_incident(uow_factory, "refused")
    runs: list[str] = []

    def body(error: OperationalError) -> Callable[[SqlUnitOfWork], None]:
        def rename(tx: SqlUnitOfWork) -> None:
            runs.append(str(error.orig))
            found = tx.incidents.get(incident.id, for_update=True)
            assert found is not None
            found.title = "must not stick"
            tx.incidents.save(found)
            raise error

        return rename

    with pytest.raises(OperationalError):
        uow_factory.run(body(aborted("57P01")), sleep=lambda _: None)  # admin shutdown
    assert runs == ["57P01"]
    with pytest.raises(OperationalError):
        uow_factory.run(body(aborted("40P01")), sleep=lambda _: None)
    assert runs == ["57P01"] + ["40P01"] * TRANSACTION_ATTEMPTS
    with uow_factory() as tx:
        stored = tx.incidents.get(incident.id)
    assert stored is not None and stored.title == "refused"


def test_the_jitter_stays_within_a_doubling_bound() -> None:
    assert retry_pause(1, jitter=lambda: 0.0) == 0.0
    assert retry_pause(1, jitter=lambda: 1.0) == pytest.approx(0.01)
    assert retry_pause(3, jitter=lambda: 1.0) == pytest.approx(0.04)


@pytest.mark.postgres
def test_two_transactions_locking_in_opposite_orders_both_commit(postgres_engine: Engine) -> None:
    """A real deadlock on PostgreSQL: the victim is run again and both bodies take effect."""
    uow = SqlUnitOfWorkFactory(postgres_engine)
    first, second = open_incident(uow, "first"), open_incident(uow, "second")
    both_hold_one = threading.Barrier(2, timeout=10)
    runs: list[str] = []

    def lock_both(name: str, order: list[Incident]) -> None:
        def body(tx: SqlUnitOfWork) -> None:
            runs.append(name)
            held = tx.incidents.get(order[0].id, for_update=True)
            if runs.count(name) == 1:
                both_hold_one.wait()  # only the first run meets the other one halfway
            other = tx.incidents.get(order[1].id, for_update=True)
            assert held is not None and other is not None
            for incident in (held, other):
                incident.resolution = f"{incident.resolution or ''}{name}"
                tx.incidents.save(incident)

        uow.run(body)

    threads = [
        threading.Thread(target=lock_both, args=("a", [first, second])),
        threading.Thread(target=lock_both, args=("b", [second, first])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(runs) == 3  # one of the two was the deadlock victim and ran twice
    with uow() as tx:
        for incident in (first, second):
            stored = tx.incidents.get(incident.id)
            assert stored is not None and sorted(stored.resolution or "") == ["a", "b"]
