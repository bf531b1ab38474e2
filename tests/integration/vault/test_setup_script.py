"""deploy/vault/setup.sh against the emulator: every call it makes is one Vault accepts."""

from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.emulators.vault import VaultEmulator
from tests.integration.vault_support import MlDatabase
from tests.tools.vault_setup import SetUpVault, run_setup_script


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
