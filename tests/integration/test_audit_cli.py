"""`gatehouse audit verify` and `export` against a real database that someone tampered with."""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.domain.audit import AuditEntry, seal
from bot.domain.events import CommanderChanged, OrphanRevoked
from bot.domain.incident import Severity
from bot.services import incidents
from bot.services.checkpoints import sign_checkpoint
from bot.store import SqlUnitOfWorkFactory
from integrations.audit_signing import Ed25519Signer
from tests.integration.test_services_on_store import T0

runner = CliRunner()


@pytest.fixture
def cli_env(
    database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def fill(uow: SqlUnitOfWorkFactory, count: int = 10) -> str:
    """`count` events: one incident opened, then hand-offs back and forth."""
    incident = incidents.start_incident(
        uow=uow,
        title="Latency",
        severity=Severity.SEV2,
        opened_by="U0A",
        channel_id="C0INC",
        channel_name="inc-20261123-latency",
        now=T0,
    )
    with uow() as tx:
        for n in range(count - 1):
            previous, commander = ("U0A", "U0B") if n % 2 == 0 else ("U0B", "U0A")
            tx.audit.append(
                CommanderChanged(
                    at=T0,
                    actor=previous,
                    incident_id=incident.id,
                    previous=previous,
                    commander=commander,
                )
            )
        tx.commit()
    return incident.id


def tamper(engine: Engine, change: Callable[[Connection], None]) -> None:
    """Change rows as an attacker with database rights would, append-only trigger included."""
    with engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        change(connection)
        if postgres:
            connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def run_sql(statement: str) -> Callable[[Connection], None]:
    def change(connection: Connection) -> None:
        connection.execute(text(statement))

    return change


def verify(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_an_intact_chain_verifies(cli_env: str, uow_factory: SqlUnitOfWorkFactory) -> None:
    fill(uow_factory)
    code, output = verify()
    assert code == 0, output
    assert "✓ audit chain intact: 10 events" in output


def test_changed_event_is_named(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    fill(uow_factory)
    tamper(engine, run_sql("UPDATE audit_events SET actor = 'U0EVIL' WHERE seq = 5"))
    assert verify() == (
        1,
        "✗ event 5 changed: its content no longer matches its hash\n"
        "  4 events before it check out.\n",
    )


def test_missing_event_is_named(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    fill(uow_factory)
    tamper(engine, run_sql("DELETE FROM audit_events WHERE seq = 5"))
    code, output = verify()
    assert code == 1
    assert output.startswith("✗ event 5 missing")


def test_reordered_events_are_named(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    fill(uow_factory)

    def swap(connection: Connection) -> None:
        connection.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 4"))
        connection.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = 7"))
        connection.execute(text("UPDATE audit_events SET seq = 7 WHERE seq = -1"))

    tamper(engine, swap)
    code, output = verify()
    assert code == 1
    assert output.startswith("✗ event 4 reordered")


def test_inserted_event_is_named(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    incident_id = fill(uow_factory)
    with uow_factory() as tx:
        fourth = next(e for e in tx.audit.events() if e.seq == 4)
    forged = seal(
        AuditEntry(
            action="request.approved", at=T0, actor="U0EVIL", incident_id=incident_id, data={}
        ),
        seq=5,
        prev_hash=fourth.hash,
    )

    def insert(connection: Connection) -> None:
        connection.execute(text("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 5"))
        connection.execute(text("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000"))
        connection.execute(
            text(
                "INSERT INTO audit_events (seq, at, action, actor, incident_id, request_id, "
                "data, prev_hash, hash) VALUES (5, :at, 'request.approved', 'U0EVIL', :inc, "
                "NULL, '{}', :prev, :hash)"
            ),
            {"at": T0, "inc": incident_id, "prev": forged.prev_hash, "hash": forged.hash},
        )

    tamper(engine, insert)
    code, output = verify()
    assert code == 1
    assert output.startswith("✗ event 5 inserted")


def test_anchor_catches_a_cut_tail(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    fill(uow_factory)
    with uow_factory() as tx:
        head = tx.audit.head()
    assert head is not None
    tamper(engine, run_sql("DELETE FROM audit_events WHERE seq >= 9"))
    assert verify()[0] == 0  # a cut tail looks whole without a witness...
    code, output = verify("--anchor", f"{head.seq}:{head.hash}")
    assert code == 1 and "event 10 was witnessed" in output
    assert verify("--anchor", "nonsense")[0] == 2


def test_export_jsonl_and_markdown(
    cli_env: str, uow_factory: SqlUnitOfWorkFactory, tmp_path: Path
) -> None:
    incident_id = fill(uow_factory, count=3)
    result = runner.invoke(app, ["audit", "export", "--incident", incident_id])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[0]["action"] == "incident.opened" and len(lines[0]["hash"]) == 64
    target = tmp_path / "report.md"
    result = runner.invoke(
        app, ["audit", "export", "--incident", incident_id, "--format", "md", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    report = target.read_text()
    assert f"# Incident {incident_id}: Latency" in report and "| 3 |" in report
    missing = runner.invoke(app, ["audit", "export", "--incident", "INC-NOPE"])
    assert missing.exit_code == 1


def test_keygen_signed_checkpoints_and_a_rehashed_chain(
    cli_env: str, engine: Engine, uow_factory: SqlUnitOfWorkFactory, tmp_path: Path
) -> None:
    public = tmp_path / "audit.pub"
    made = runner.invoke(app, ["audit", "keygen", "--public-key", str(public)])
    assert made.exit_code == 0 and public.exists()
    private = made.output.split("GATEHOUSE_AUDIT_SIGNING_KEY=")[1].strip()
    signer = Ed25519Signer(private)
    fill(uow_factory, count=6)
    assert sign_checkpoint(uow=uow_factory, signer=signer, now=T0) is not None
    with uow_factory() as tx:
        tx.audit.append(OrphanRevoked(at=T0, accessor="orphan-99", confirmed_at=T0))
        tx.commit()
    code, output = verify("--public-key", str(public))
    assert code == 0, output
    assert (
        "signed checkpoints: 1 verify" in output and "events 7 to 7 are not yet covered" in output
    )

    # An attacker with database rights but not the key edits event 3 and re-hashes the rest.
    with uow_factory() as tx:
        events = list(tx.audit.events())
    forged = [*events[:2], replace(events[2], entry=replace(events[2].entry, actor="U0EVIL"))]
    for event in events[3:]:
        forged.append(event)
    prev = forged[1].hash
    rows = []
    for event in forged[2:]:
        sealed = seal(event.entry, seq=event.seq, prev_hash=prev)
        prev = sealed.hash
        rows.append(sealed)

    def rewrite(connection: Connection) -> None:
        for sealed in rows:
            connection.execute(
                text(
                    "UPDATE audit_events SET actor = :actor, prev_hash = :prev, hash = :hash "
                    "WHERE seq = :seq"
                ),
                {
                    "actor": sealed.entry.actor,
                    "prev": sealed.prev_hash,
                    "hash": sealed.hash,
                    "seq": sealed.seq,
                },
            )

    tamper(engine, rewrite)
    assert verify()[0] == 0  # the chain alone is fooled...
    code, output = verify("--public-key", str(public))
    assert code == 1 and "event 6 changed" in output  # ...the signed checkpoint is not
