"""deploy/vault/setup.sh against the emulator: every call it makes is one Vault accepts."""

import os
import subprocess
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.emulators.vault import VaultEmulator, running_vault
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import (
    REPO,
    SETUP_SCRIPT,
    SetUpVault,
    fake_vault_cli,
    run_setup_script,
)


def test_setup_configures_engine_roles_policies_and_approle(set_up_vault: SetUpVault) -> None:
    root = set_up_vault.root()
    roles = root.secrets.database.list_roles()["data"]["keys"]
    assert sorted(roles) == ["feature-store-rw", "inference-logs-ro"]
    logs = root.secrets.database.read_role("inference-logs-ro")["data"]
    assert (logs["default_ttl"], logs["max_ttl"]) == (3600, 4 * 3600)
    assert any("pg_terminate_backend" in s for s in logs["revocation_statements"])
    token_role = root.read("auth/token/roles/gatehouse-incident")["data"]
    assert token_role["orphan"] is True
    assert "ml-serving-exec" in token_role["allowed_policies"]
    assert "Vault is ready for Gatehouse." in set_up_vault.output
    assert set_up_vault.secret_id not in set_up_vault.output


def test_the_bot_can_do_exactly_what_it_needs(set_up_vault: SetUpVault) -> None:
    bot = hvac.Client(url=set_up_vault.emulator.url)
    bot.auth.approle.login(role_id=set_up_vault.role_id, secret_id=set_up_vault.secret_id)
    needed = {
        "auth/token/create/gatehouse-incident": {"create", "update"},
        "auth/token/revoke-accessor": {"update"},
        "auth/token/lookup-accessor": {"update"},
        "auth/token/renew-accessor": {"update"},
        "auth/token/accessors/": {"list", "sudo"},
        "sys/leases/revoke": {"update"},
        "sys/leases/lookup/database/creds/inference-logs-ro": {"list", "sudo"},
    }
    answer = bot.sys.get_capabilities(paths=list(needed), token=None)
    for path, capabilities in needed.items():
        assert capabilities <= set(answer["data"][path]), path
    refused = ["database/creds/inference-logs-ro", "auth/token/create", "sys/policies/acl/x"]
    answer = bot.sys.get_capabilities(paths=refused, token=None)
    assert all(answer["data"][path] == ["deny"] for path in refused)
    with pytest.raises(hvac.exceptions.Forbidden):
        bot.read("database/creds/inference-logs-ro")


def test_setup_runs_again_without_harm(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    connection = ml_database.url.replace("postgres@", "{{username}}@", 1)
    run_setup_script(vault, connection, tmp_path / "first")
    again = run_setup_script(vault, connection, tmp_path / "second")
    assert "Vault is ready for Gatehouse." in again.output


def run_setup(
    emulator: VaultEmulator,
    ml_database: MlDatabase,
    folder: Path,
    *args: str,
    env_file: Path | None,
    **extra: str,
) -> str:
    """setup.sh against `emulator` with the `vault` CLI stand-in; its output (it must pass)."""
    environment = {
        **os.environ,
        "PATH": f"{fake_vault_cli(folder / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "VAULT_ADDR": emulator.url,
        "VAULT_TOKEN": emulator.root_token,
        "GATEHOUSE_DB_CONNECTION_URL": ml_database.url.replace("postgres@", "{{username}}@", 1),
        "GATEHOUSE_DB_USERNAME": "postgres",
        "GATEHOUSE_DB_PASSWORD": "unused-with-trust-auth",
        **extra,
    }
    environment.pop("GATEHOUSE_APPROLE_ENV_FILE", None)
    if env_file is not None:
        environment["GATEHOUSE_APPROLE_ENV_FILE"] = str(env_file)
    done = subprocess.run(
        ["sh", str(SETUP_SCRIPT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def secret_ids(emulator: VaultEmulator) -> set[str]:
    return set(emulator.core.mounts["auth/approle/"].backend.roles["gatehouse"].secret_ids)


def bot_tokens(emulator: VaultEmulator) -> list[str]:
    """Live tokens carrying the bot's policy: AppRole logins."""
    return [t.id for t in emulator.core.tokens.tokens.values() if "gatehouse" in t.policies]


def logs_in(emulator: VaultEmulator, env_file: Path) -> bool:
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    try:
        hvac.Client(url=emulator.url).auth.approle.login(
            role_id=values["GATEHOUSE_VAULT_ROLE_ID"],
            secret_id=values["GATEHOUSE_VAULT_SECRET_ID"],
        )
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath):
        return False
    return True


def test_a_rerun_keeps_the_secret_id_instead_of_issuing_another(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    env_file = tmp_path / "approle.env"
    run_setup(vault, ml_database, tmp_path, env_file=env_file)
    first = env_file.read_text()
    assert len(secret_ids(vault)) == 1

    again = run_setup(vault, ml_database, tmp_path, env_file=env_file)

    assert "still logs in; kept" in again
    assert env_file.read_text() == first
    assert len(secret_ids(vault)) == 1, "no second non-expiring secret id"
    assert bot_tokens(vault) == [], "the login that checked it is revoked"
    assert first.split("SECRET_ID=")[1].strip() not in again


def test_a_secret_id_that_no_longer_logs_in_is_replaced(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    env_file = tmp_path / "approle.env"
    run_setup(vault, ml_database, tmp_path, env_file=env_file)
    first = env_file.read_text()
    vault.core.mounts["auth/approle/"].backend.roles["gatehouse"].secret_ids.clear()

    run_setup(vault, ml_database, tmp_path, env_file=env_file)

    assert env_file.read_text() != first
    assert len(secret_ids(vault)) == 1 and logs_in(vault, env_file)


def test_a_restarted_dev_vault_gets_the_same_login_back(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    """A dev-mode Vault keeps everything in memory: after a restart the setup runs again and
    the login the bot already holds works again, so the bot needs no new file."""
    env_file = tmp_path / "approle.env"
    run_setup(vault, ml_database, tmp_path, env_file=env_file)
    first = env_file.read_text()
    assert run_setup(vault, ml_database, tmp_path, "--if-needed", env_file=env_file) == ""

    with running_vault(root_token=vault.root_token) as restarted:
        assert not logs_in(restarted, env_file)
        output = run_setup(restarted, ml_database, tmp_path, "--if-needed", env_file=env_file)

        assert "registered again" in output and "Vault is ready for Gatehouse." in output
        assert env_file.read_text() == first
        assert logs_in(restarted, env_file)
        assert run_setup(restarted, ml_database, tmp_path, "--if-needed", env_file=env_file) == ""


def test_without_the_file_a_rerun_issues_no_secret_id_unless_asked(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    first = run_setup(vault, ml_database, tmp_path, env_file=None)
    assert "GATEHOUSE_VAULT_SECRET_ID=" in first

    again = run_setup(vault, ml_database, tmp_path, env_file=None)
    assert "GATEHOUSE_VAULT_SECRET_ID=" not in again
    assert "no new secret id was issued" in again and "GATEHOUSE_VAULT_ROLE_ID=" in again
    assert len(secret_ids(vault)) == 1

    asked = run_setup(
        vault, ml_database, tmp_path, env_file=None, GATEHOUSE_APPROLE_NEW_SECRET_ID="1"
    )
    assert "GATEHOUSE_VAULT_SECRET_ID=" in asked and len(secret_ids(vault)) == 2


def test_the_incident_token_cap_is_a_setting(
    vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path
) -> None:
    run_setup(vault, ml_database, tmp_path, env_file=None, GATEHOUSE_INCIDENT_TOKEN_MAX_TTL="72h")
    role = hvac.Client(url=vault.url, token=vault.root_token).read(
        "auth/token/roles/gatehouse-incident"
    )
    assert role["data"]["token_explicit_max_ttl"] == 72 * 3600
