"""Support for the Vault tests: the emulator, an ML database on real PostgreSQL, Vault set up
by deploy/vault/setup.sh, and the bot's broker logged in with the AppRole setup.sh made."""

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bot.domain.ports import IncidentTokenLedger
from integrations.vault import VaultConfig, VaultCredentialBroker, VaultSession
from tests.emulators.vault import VaultEmulator, running_vault
from tests.tools.vault_setup import SetUpVault, run_setup_script

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "deploy" / "vault" / "setup.sh"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
INCIDENT_POLICIES = [
    "gatehouse-incident-token",
    "gatehouse-feature-store-rw",
    "gatehouse-inference-logs-ro",
    "ml-serving-exec",
]


@dataclass
class MlDatabase:
    """A database shaped like the one the example policy's resources point at."""

    admin_url: str
    url: str
    name: str
    users: list[str] = field(default_factory=list)

    def login(self, user: str, password: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url, user=user, password=password, connect_timeout=5, autocommit=True
        )

    def password_matches(self, user: str, password: str) -> bool:
        """Check `password` against the role's SCRAM-SHA-256 verifier.

        The test server trusts local connections, so a login alone would not prove the
        password Vault handed out is the role's password; the stored verifier does.
        """
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,)
            ).fetchone()
        if row is None or not str(row[0]).startswith("SCRAM-SHA-256$"):
            return False
        iterations_salt, keys = str(row[0]).removeprefix("SCRAM-SHA-256$").split("$")
        iterations, salt = iterations_salt.split(":")
        stored_key = keys.split(":")[0]
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return hmac.compare_digest(
            base64.b64encode(hashlib.sha256(client_key).digest()).decode(), stored_key
        )

    def valid_until(self, user: str) -> datetime | None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (user,)
            ).fetchone()
        return None if row is None else row[0]

    def role_exists(self, user: str) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)
            ).fetchone()
        return row is not None


@pytest.fixture(scope="session")
def ml_database() -> Iterator[MlDatabase]:
    admin_url = (os.environ.get("GATEHOUSE_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL).replace(
        "postgresql+psycopg://", "postgresql://"
    )
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL is not reachable ({str(error).strip().splitlines()[0]})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"gatehouse_ml_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{admin_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA raw")
        connection.execute(
            "CREATE TABLE raw.inference_logs (id int PRIMARY KEY, model text, email text, "
            "latency_ms int)"
        )
        connection.execute(
            "INSERT INTO raw.inference_logs VALUES (1, 'ranker-v7', 'ada@example.com', 2400)"
        )
        connection.execute("CREATE SCHEMA inference_logs")
        connection.execute(
            "CREATE VIEW inference_logs.masked AS SELECT id, model, "
            "regexp_replace(email, '^[^@]+', '***') AS email, latency_ms FROM raw.inference_logs"
        )
        connection.execute("CREATE SCHEMA feature_store")
        connection.execute("CREATE TABLE feature_store.features (key text PRIMARY KEY, value int)")
    database = MlDatabase(admin_url=admin_url, url=url, name=name)
    try:
        yield database
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        leftovers = admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%%gatehouse%%' "
            "OR rolname = ANY(%s)",
            (database.users,),
        ).fetchall()
        for (role,) in leftovers:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with running_vault() as emulator:
        yield emulator


@pytest.fixture
def set_up_vault(vault: VaultEmulator, ml_database: MlDatabase, tmp_path: Path) -> SetUpVault:
    connection = ml_database.url.replace("postgres@", "{{username}}@", 1)
    return run_setup_script(vault, connection, tmp_path)


def approle_session(setup: SetUpVault, **overrides: Any) -> VaultSession:
    config = VaultConfig(
        address=setup.emulator.url,
        auth="approle",
        role_id=setup.role_id,
        secret_id=setup.secret_id,
        timeout_seconds=overrides.pop("timeout_seconds", 5.0),
        backoff_seconds=overrides.pop("backoff_seconds", 0.01),
        **overrides,
    )
    return VaultSession(config)


@dataclass
class RecordedTokens:
    accessors: list[tuple[str, str]] = field(default_factory=list)

    def record(self, incident_id: str, accessor: str) -> None:
        self.accessors.append((incident_id, accessor))


def make_broker(
    setup: SetUpVault, ledger: IncidentTokenLedger | None = None, **session_overrides: Any
) -> VaultCredentialBroker:
    return VaultCredentialBroker(
        approle_session(setup, **session_overrides),
        incident_policies=INCIDENT_POLICIES,
        ledger=ledger or RecordedTokens(),
    )
