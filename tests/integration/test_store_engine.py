"""Engine set-up and the column types that keep times aware and durations whole."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import StatementError

from bot.store import SqlUnitOfWorkFactory, create_engine_for
from bot.store.engine import normalize_url

from . import builders


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://gatehouse@db:5432/gatehouse", "postgresql+psycopg"),
        ("postgresql+psycopg://gatehouse@db/gatehouse", "postgresql+psycopg"),
        ("postgresql+psycopg2://gatehouse@db/gatehouse", "postgresql+psycopg"),
        ("sqlite:///gatehouse.db", "sqlite"),
    ],
)
def test_urls_are_pinned_to_the_drivers_we_ship(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver
    assert create_engine_for(given).url.drivername == driver


def test_other_databases_are_refused_with_the_url_shown_without_password() -> None:
    with pytest.raises(ValueError, match="Unsupported database URL") as refused:
        normalize_url("mysql://root:hunter2@db/gatehouse")
    assert "hunter2" not in str(refused.value)


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("foreign_keys", "journal_mode", "busy_timeout", "synchronous")
            }
    finally:
        engine.dispose()
    # synchronous 1 is NORMAL: https://www.sqlite.org/pragma.html#pragma_synchronous
    assert pragmas == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": 30_000,
        "synchronous": 1,
    }


def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    """A second writer waits for the first instead of reading a head that is about to change."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'locks.db'}")
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    assert statements[:2] == ["BEGIN IMMEDIATE", "SELECT 1"]


def test_foreign_keys_are_enforced(uow_factory: SqlUnitOfWorkFactory) -> None:
    orphan = builders.access_request("INC-never-opened")
    with uow_factory() as uow, pytest.raises(StatementError):
        uow.requests.add(orphan)


def test_naive_datetimes_are_refused(uow_factory: SqlUnitOfWorkFactory) -> None:
    naive = builders.incident(opened_at=datetime(2026, 11, 23, 9, 30))
    with uow_factory() as uow, pytest.raises(StatementError, match="naive datetime"):
        uow.incidents.add(naive)


def test_durations_must_be_whole_seconds(uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    request = builders.access_request(incident.id, duration=timedelta(seconds=1.5))
    with uow_factory() as uow:
        uow.incidents.add(incident)
        with pytest.raises(StatementError, match="whole seconds"):
            uow.requests.add(request)


def test_times_are_stored_as_utc(engine: Engine, uow_factory: SqlUnitOfWorkFactory) -> None:
    incident = builders.incident()
    with uow_factory() as uow:
        uow.incidents.add(incident)
        uow.commit()

    with engine.connect() as connection:
        stored = connection.execute(text("SELECT opened_at FROM incidents")).scalar_one()
    if isinstance(stored, str):
        assert stored.startswith("2026-11-23 09:30:15.123456")
    else:
        assert stored == builders.T0
