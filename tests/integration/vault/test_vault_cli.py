"""`gatehouse vault reconcile` against the emulator and a migrated SQLite database."""

from pathlib import Path

import hvac.exceptions
import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from tests.emulators.vault import VaultEmulator
from tests.integration.vault.test_broker_contract import Target, prepare

EXAMPLE_POLICY = Path(__file__).resolve().parents[3] / "deploy" / "policy.example.yaml"


def an_orphan_to_reconcile(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Target, str]:
    """Vault holding a token of a grant nobody knows; the bot's settings in the environment."""
    target = prepare(Target(vault.url, vault.root_token, vault))
    orphan = target.root().auth.token.create(
        policies=["ml-serving-exec"],
        meta={"gatehouse_incident": "INC-GONE", "gatehouse_grant": "G-GONE"},
    )["auth"]["accessor"]
    database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(database)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": database,
        "GATEHOUSE_POLICY": str(EXAMPLE_POLICY),
        "VAULT_ADDR": vault.url,
        "VAULT_TOKEN": target.bot_token(),
    }.items():
        monkeypatch.setenv(name, value)
    return target, orphan


def test_reconcile_revokes_an_orphan_and_reports(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, orphan = an_orphan_to_reconcile(vault, tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["vault", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "Orphan tokens revoked: 1" in result.output
    with pytest.raises(hvac.exceptions.InvalidRequest):
        target.root().auth.token.lookup_accessor(orphan)


def test_dry_run_lists_the_orphan_and_revokes_nothing(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, orphan = an_orphan_to_reconcile(vault, tmp_path, monkeypatch)

    result = CliRunner().invoke(app, ["vault", "reconcile", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Dry run: nothing was changed. A reconcile would:",
        f"  revoke token {orphan} (incident INC-GONE, grant G-GONE)",
    ]
    assert target.root().auth.token.lookup_accessor(orphan)["data"]["accessor"] == orphan
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gatehouse.db'}")
    try:
        with SqlUnitOfWorkFactory(engine).reader() as tx:
            assert tx.audit.head() is None  # nothing recorded either
    finally:
        engine.dispose()

    done = CliRunner().invoke(app, ["vault", "reconcile"])

    assert done.exit_code == 0, done.output
    assert "Orphan tokens revoked: 1" in done.stdout


def test_dry_run_with_nothing_to_revoke_says_so(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, orphan = an_orphan_to_reconcile(vault, tmp_path, monkeypatch)
    target.root().auth.token.revoke_accessor(orphan)

    result = CliRunner().invoke(app, ["vault", "reconcile", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "Dry run: nothing was changed, and a reconcile would revoke nothing.\n"


def test_reconcile_without_vault_settings_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(database)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("GATEHOUSE_POLICY", str(EXAMPLE_POLICY))
    for name in ("VAULT_ADDR", "VAULT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["vault", "reconcile"])
    assert result.exit_code == 2
    assert "VAULT_ADDR, VAULT_TOKEN not set" in result.output


def test_reconcile_with_vault_unreachable_says_so_without_promising_a_retry(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-shot command does not retry: the bot's "Gatehouse will retry" is not repeated."""
    an_orphan_to_reconcile(vault, tmp_path, monkeypatch)
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    monkeypatch.setenv("GATEHOUSE_VAULT_TIMEOUT", "1")

    result = CliRunner().invoke(app, ["vault", "reconcile"])

    assert result.exit_code == 1, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("✗ ")]
    assert problems, result.output
    assert len(problems) == len(set(problems)), "each problem is said once"
    assert "Traceback" not in result.output
    assert "retry" not in result.output.lower()
    assert result.stdout == "", "no counts of zero that would read as a clean Vault"
    assert all("gatehouse doctor" in line for line in problems)

    dry = CliRunner().invoke(app, ["vault", "reconcile", "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert "would revoke nothing" not in dry.output
