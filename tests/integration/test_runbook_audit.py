"""docs/operations.md on the audit trail, played through the CLI: rotating the signing key, and
verifying a database restored from a backup."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.domain import events
from bot.services.checkpoints import sign_checkpoint
from bot.store import SqlUnitOfWorkFactory
from integrations.audit_signing import Ed25519Signer
from tests.integration.test_audit_cli import cli_env, fill, run_sql, tamper, verify  # noqa: F401
from tests.integration.test_services_on_store import T0

runner = CliRunner()


def keygen(public_key: Path) -> Ed25519Signer:
    """`gatehouse audit keygen --public-key FILE`, and the bot's signer from what it printed."""
    made = runner.invoke(app, ["audit", "keygen", "--public-key", str(public_key)])
    assert made.exit_code == 0, made.output
    return Ed25519Signer(made.output.split("GATEHOUSE_AUDIT_SIGNING_KEY=")[1].strip())


def as_of_backup(engine: Engine, *, seq: int) -> None:
    """The database as a backup taken at event `seq` has it (append-only triggers aside)."""
    with engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        for table in ("audit_events", "audit_checkpoints") if postgres else ():
            connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        connection.exec_driver_sql(f"DELETE FROM audit_events WHERE seq > {seq}")
        connection.exec_driver_sql("DELETE FROM audit_checkpoints")
        for table in ("audit_events", "audit_checkpoints") if postgres else ():
            connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def append(uow: SqlUnitOfWorkFactory, count: int) -> None:
    with uow() as tx:
        for n in range(count):
            tx.audit.append(events.OrphanRevoked(at=T0, accessor=f"orphan-{n}", confirmed_at=T0))
        tx.commit()


def test_after_rotating_the_key_both_public_keys_verify_their_checkpoints(
    cli_env: str,  # noqa: F811
    engine: Engine,
    uow_factory: SqlUnitOfWorkFactory,
    tmp_path: Path,
) -> None:
    old_pub, new_pub = tmp_path / "gatehouse-audit.pub", tmp_path / "gatehouse-audit-2.pub"
    old, new = keygen(old_pub), keygen(new_pub)
    fill(uow_factory, count=5)
    assert sign_checkpoint(uow=uow_factory, signer=old, now=T0) is not None
    append(uow_factory, 5)
    # The bot restarted with the new key; its next checkpoint is due after 60 s.
    assert sign_checkpoint(uow=uow_factory, signer=new, now=T0 + timedelta(seconds=61))

    code, output = verify("--public-key", str(old_pub))
    assert code == 0, output
    assert f"signed checkpoints: 1 verify with key {old.key_id}" in output
    assert "events 6 to 10 are not yet covered" in output
    code, output = verify("--public-key", str(new_pub))
    assert code == 0, output
    assert f"signed checkpoints: 1 verify with key {new.key_id}" in output
    assert "not yet covered" not in output

    # The newest checkpoint pins every event before it, the old key's included.
    tamper(engine, run_sql("UPDATE audit_events SET actor = 'U0EVIL' WHERE seq = 2"))
    code, output = verify("--public-key", str(new_pub))
    assert code == 1 and "event 2 changed" in output


def test_a_restored_backup_fails_at_the_first_event_it_lost(
    cli_env: str,  # noqa: F811
    engine: Engine,
    uow_factory: SqlUnitOfWorkFactory,
    tmp_path: Path,
) -> None:
    public_key = tmp_path / "gatehouse-audit.pub"
    signer = keygen(public_key)
    fill(uow_factory, count=8)
    assert sign_checkpoint(uow=uow_factory, signer=signer, now=T0) is not None
    with uow_factory() as tx:
        witnessed = tx.audit.head()  # as a close summary posts it in Slack
    assert witnessed is not None
    # The backup was taken at event 6: events 7 and 8, and the checkpoint over them, are gone.
    as_of_backup(engine, seq=6)
    assert sign_checkpoint(uow=uow_factory, signer=signer, now=T0) is not None

    anchor = f"{witnessed.seq}:{witnessed.hash}"
    code, output = verify("--public-key", str(public_key), "--anchor", anchor)

    assert code == 1
    assert output.startswith("✗ event 7 missing")
