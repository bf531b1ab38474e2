"""Revision 0016 keeps when access ends on its request alone: an active access keeps its end
(the earlier of the two, where request and grant disagreed), and the downgrade restores the
grant's columns from the request."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, MetaData, Table, inspect, select

from bot.domain.access import RequestState
from bot.domain.ports import AccessEnd
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate

T0 = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _moment(url: str, moment: datetime) -> datetime:
    """As the store writes it: SQLite keeps naive UTC."""
    return moment.replace(tzinfo=None) if url.startswith("sqlite") else moment


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _tables(connection: Connection) -> dict[str, Table]:
    reflected = MetaData()
    reflected.reflect(connection, only=["incidents", "access_requests", "grants"])
    return dict(reflected.tables)


def _request(url: str, number: int, state: RequestState, ends_at: datetime) -> dict[str, Any]:
    return {
        "id": f"R-{number}",
        "incident_id": "INC-1",
        "resource": "logs",
        "requester_id": "U0ASK",
        "reason": "debugging",
        "duration_seconds": 3600,
        "requested_at": _moment(url, T0),
        "approvals_required": 1,
        "eligible_approvers": '["U0LEAD"]',
        "state": state.value,
        "activated_at": _moment(url, T0),
        "ends_at": _moment(url, ends_at),
        "ended_at": _moment(url, ends_at) if state.is_terminal else None,
        "end_reason": "incident closed" if state.is_terminal else None,
        "break_glass": False,
    }


def _grant(url: str, number: int, status: str, ends_at: datetime) -> dict[str, Any]:
    revoked = status == "revoked"
    return {
        "id": f"G-{number}",
        "request_id": f"R-{number}",
        "incident_id": "INC-1",
        "resource": "logs",
        "requester_id": "U0ASK",
        "created_at": _moment(url, T0),
        "ends_at": _moment(url, ends_at),
        "status": status,
        "revoke_requested_at": _moment(url, ends_at) if revoked else None,
        "revoke_reason": "incident closed" if revoked else None,
        "revoke_attempts": 0,
    }


def test_active_access_keeps_its_end_and_the_downgrade_restores_the_grants(
    database_url: str,
) -> None:
    url = database_url
    migrate.upgrade(url, "0015")
    with _connected(url) as connection:
        tables = _tables(connection)
        connection.execute(
            tables["incidents"]
            .insert()
            .values(
                id="INC-1",
                title="latency",
                severity="sev2",
                commander_id="U0IC",
                opened_by="U0IC",
                opened_at=_moment(url, T0),
                status="open",
            )
        )
        connection.execute(
            tables["access_requests"].insert(),
            [
                _request(url, 1, RequestState.ACTIVE, T0 + HOUR),
                _request(url, 2, RequestState.ACTIVE, T0 + HOUR),  # its grant ends earlier
                _request(url, 3, RequestState.REVOKED, T0 + HOUR / 4),
            ],
        )
        connection.execute(
            tables["grants"].insert(),
            [
                _grant(url, 1, "active", T0 + HOUR),
                _grant(url, 2, "active", T0 + HOUR / 2),
                _grant(url, 3, "revoked", T0 + HOUR / 4),
            ],
        )

    migrate.upgrade(url)

    columns = inspect_columns(url)
    assert "ends_at" not in columns["grants"] and "revoke_reason" not in columns["grants"]
    assert "notify_pending" not in columns["access_requests"]
    engine = create_engine_for(url)
    try:
        with SqlUnitOfWorkFactory(engine)() as tx:
            ends = {r: tx.requests.get(r) for r in ("R-1", "R-2", "R-3")}
            assert {r: (q.ends_at if q else None) for r, q in ends.items()} == {
                "R-1": T0 + HOUR,
                "R-2": T0 + HOUR / 2,
                "R-3": T0 + HOUR / 4,
            }
            assert tx.grants.list_due(T0 + 2 * HOUR, limit=10) == [
                AccessEnd("R-2", T0 + HOUR / 2),
                AccessEnd("R-1", T0 + HOUR),
            ]
    finally:
        engine.dispose()

    migrate.downgrade(url, "0015")

    with _connected(url) as connection:
        grants = _tables(connection)["grants"]
        rows = connection.execute(
            select(grants.c.id, grants.c.ends_at, grants.c.revoke_reason).order_by(grants.c.id)
        ).all()
    assert [(row.id, _utc(row.ends_at), row.revoke_reason) for row in rows] == [
        ("G-1", T0 + HOUR, None),
        ("G-2", T0 + HOUR / 2, None),
        ("G-3", T0 + HOUR / 4, "incident closed"),
    ]
    assert "notify_pending" in inspect_columns(url)["access_requests"]


def inspect_columns(url: str) -> dict[str, set[str]]:
    engine = create_engine_for(url)
    try:
        found = inspect(engine)
        return {
            table: {column["name"] for column in found.get_columns(table)}
            for table in ("grants", "access_requests")
        }
    finally:
        engine.dispose()
