"""Run deploy/vault/setup.sh against the Vault emulator, with the `vault` CLI stand-in."""

import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hvac

from tests.emulators.vault import VaultEmulator

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "deploy" / "vault" / "setup.sh"


def fake_vault_cli(folder: Path) -> Path:
    """A `vault` executable that runs the CLI stand-in with this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "vault"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.tools.vault_cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


@dataclass
class SetUpVault:
    emulator: VaultEmulator
    role_id: str
    secret_id: str = field(repr=False)
    output: str

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.emulator.url, token=self.emulator.root_token)


def run_setup_script(emulator: VaultEmulator, connection_url: str, tmp_path: Path) -> SetUpVault:
    """deploy/vault/setup.sh against `emulator`, with `connection_url` as the database template."""
    env_file = tmp_path / "approle.env"
    connection = connection_url
    environment = {
        **os.environ,
        "PATH": f"{fake_vault_cli(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "VAULT_ADDR": emulator.url,
        "VAULT_TOKEN": emulator.root_token,
        "GATEHOUSE_DB_CONNECTION_URL": connection,
        "GATEHOUSE_DB_USERNAME": "postgres",
        "GATEHOUSE_DB_PASSWORD": "unused-with-trust-auth",
        "GATEHOUSE_APPROLE_ENV_FILE": str(env_file),
    }
    done = subprocess.run(
        ["sh", str(SETUP_SCRIPT)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    return SetUpVault(
        emulator,
        values["GATEHOUSE_VAULT_ROLE_ID"],
        values["GATEHOUSE_VAULT_SECRET_ID"],
        done.stdout,
    )
