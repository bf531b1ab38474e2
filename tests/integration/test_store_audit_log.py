"""The audit chain in the database: sealed in the transaction, verifiable, append-only."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import DBAPIError

from bot.domain import events
from bot.domain.audit import (
    GENESIS_HASH,
    Action,
    AuditEntry,
    AuditEvent,
    canonical_json,
    next_in_chain,
    utc_iso,
    verify_chain,
    verify_rows,
)
from bot.store import SqlUnitOfWorkFactory
from bot.store.audit_log import STREAM_BATCH
from bot.store.tables import audit_events

from .builders import BERLIN_WINTER, T0


def _entry(number: int, *, incident_id: str | None = "INC-1") -> AuditEntry:
    return AuditEntry(
        action=Action.REQUEST_FILED,
        at=(T0 + timedelta(seconds=number, microseconds=number)).astimezone(BERLIN_WINTER),
        actor="U0REQUEST",
        incident_id=incident_id,
        request_id=f"R-{number}",
        data={"resource": "inference-logs", "n": number, "nested": {"b": [1.5, None], "a": "ü"}},
    )


def _event(number: int, *, incident_id: str | None = "INC-1") -> events.RequestFiled:
    return events.RequestFiled(
        at=(T0 + timedelta(seconds=number, microseconds=number)).astimezone(BERLIN_WINTER),
        actor="U0REQUEST",
        incident_id=incident_id,
        request_id=f"R-{number}",
        resource="inference-logs",
        reason=f"über {number}",
        approvals_required=number,
        approvers=("U0LEAD2", "U0LEAD1"),
    )


def test_appended_events_form_a_verifiable_chain(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        assert uow.audit.head() is None
        sealed = [uow.audit.append(_event(n, incident_id=f"INC-{n % 2}")) for n in range(1, 6)]
        uow.commit()

    assert [event.seq for event in sealed] == [1, 2, 3, 4, 5]
    assert sealed[0].prev_hash == GENESIS_HASH
    with uow_factory() as uow:
        stored = list(uow.audit.events())
        assert stored == sealed
        assert uow.audit.head() == sealed[-1]
        assert verify_chain(stored).ok
        assert [e.seq for e in uow.audit.events(incident_id="INC-1")] == [1, 3, 5]
        assert [e.seq for e in uow.audit.events(after_seq=3)] == [4, 5]
        assert [e.seq for e in uow.audit.events(incident_id="INC-0", after_seq=2)] == [4]


def test_stored_data_is_the_canonical_json_that_was_hashed(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    with uow_factory() as uow:
        event = uow.audit.append(_event(1))
        uow.commit()

    with engine.connect() as connection:
        stored = connection.execute(text("SELECT data FROM audit_events")).scalar_one()
    assert stored == canonical_json(event.entry.data).decode("utf-8")


def test_a_rolled_back_append_leaves_no_gap(uow_factory: SqlUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.audit.append(_event(1))

    with uow_factory() as uow:
        event = uow.audit.append(_event(2))
        uow.commit()

    assert event.seq == 1
    assert event.prev_hash == GENESIS_HASH


def test_events_stream_a_long_chain_in_batches(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    count = STREAM_BATCH * 2 + 17
    chain: list[AuditEvent] = []
    head = None
    for number in range(1, count + 1):
        head = next_in_chain(_entry(number), head)
        chain.append(head)
    rows = [
        {
            "seq": e.seq,
            "at": utc_iso(e.entry.at),
            "action": e.entry.action,
            "actor": e.entry.actor,
            "incident_id": e.entry.incident_id,
            "request_id": e.entry.request_id,
            "data": canonical_json(e.entry.data).decode("utf-8"),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in chain
    ]
    with engine.begin() as connection:
        connection.execute(insert(audit_events), rows)

    with uow_factory() as uow:
        report = verify_chain(uow.audit.events())
        assert uow.audit.head() == chain[-1]

    assert report.ok
    assert (report.checked, report.head_seq, report.head_hash) == (count, count, chain[-1].hash)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'U0MALLORY'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgres_refuses_to_change_the_audit_trail(
    postgres_engine: Engine, statement: str
) -> None:
    uow_factory = SqlUnitOfWorkFactory(postgres_engine)
    with uow_factory() as uow:
        uow.audit.append(_event(1))
        uow.commit()

    with postgres_engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text(statement))

    with uow_factory() as uow:
        assert [e.entry.actor for e in uow.audit.events()] == ["U0REQUEST"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_checkpoints SET signature = 'forged'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgres_refuses_to_change_signed_checkpoints(
    postgres_engine: Engine, statement: str
) -> None:
    with postgres_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_checkpoints (seq, head_hash, at, key_id, signature) "
                "VALUES (0, :hash, '2026-11-23T09:00:00.000000+00:00', 'k1', 'sig')"
            ),
            {"hash": "0" * 64},
        )
    with postgres_engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text(statement))
    with postgres_engine.connect() as connection:
        assert connection.execute(
            text("SELECT signature FROM audit_checkpoints")
        ).scalars().all() == ["sig"]


@pytest.mark.postgres
def test_postgres_streams_events_through_a_server_side_cursor(postgres_engine: Engine) -> None:
    cursor_types: list[str] = []

    @event.listens_for(postgres_engine, "after_cursor_execute")
    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.endswith("ORDER BY audit_events.seq"):
            cursor_types.append(type(cursor).__name__)

    uow_factory = SqlUnitOfWorkFactory(postgres_engine)
    with uow_factory() as uow:
        uow.audit.append(_event(1))
        assert [e.seq for e in uow.audit.events()] == [1]

    assert cursor_types == ["ServerCursor"]


def test_the_database_assembles_the_bytes_that_were_hashed(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """Texts JSON-quoted by the database as `canonical_event` quotes them, NULL as null."""
    awkward = '"\\\n\r\t\b\f\x01\x1f\x7fü€😀\u2028/<&>'  # quote, backslash, controls, non-ASCII
    with uow_factory() as uow:
        for actor, request_id in [(awkward, awkward), (None, "R-2"), ("U0ONE", None)]:
            uow.audit.append(
                events.RequestCancelled(
                    at=T0, actor=actor, incident_id=awkward, request_id=request_id, reason=awkward
                )
            )
        uow.commit()

    with uow_factory() as uow:
        stored = list(uow.audit.events())
        rows = list(uow.audit.chain_rows())
        assert [row[3] for row in rows] == [event.canonical() for event in stored]
        assert [uow.audit.canonical(event.seq) for event in stored] == [row[3] for row in rows]
        report = verify_rows(rows)
    assert (report.ok, report.checked) == (True, 3)
