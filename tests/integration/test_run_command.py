"""`gatehouse run` at start, against the Slack and Vault emulators: a known failure is one line
on stderr and exit 1 (no traceback), an unexpected one is logged with its traceback, wrong
settings are all listed (exit 2) with nothing created, and a started bot stops cleanly on
SIGTERM (exit 0)."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from typer.testing import CliRunner, Result

from bot import bootstrap
from bot.cli import app
from bot.config import Settings
from bot.store import migrate
from integrations.audit_signing import new_key
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.vault import VaultEmulator, running_vault

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
ROOT_TOKEN = "hvs.gatehouse-test-root-token"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with running_slack() as emulator:
        yield emulator


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with running_vault(root_token=ROOT_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No Gatehouse variable from outside, an empty working directory, and logging as it was
    before `gatehouse run` configured it."""
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, str):
            monkeypatch.delenv(field.validation_alias, raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def healthy(isolated: Path, slack: SlackEmulator, vault: VaultEmulator) -> dict[str, str]:
    """Settings that start the bot: HTTP mode, the emulators, a migrated SQLite database."""
    database = f"sqlite:///{isolated / 'gatehouse.db'}"
    migrate.upgrade(database)
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "GATEHOUSE_SLACK_API_URL": slack.api_url,
        "VAULT_ADDR": vault.url,
        "VAULT_TOKEN": ROOT_TOKEN,
        "DATABASE_URL": database,
        "GATEHOUSE_POLICY": str(EXAMPLE_POLICY),
        "GATEHOUSE_MODE": "http",
        "GATEHOUSE_HOST": "127.0.0.1",
        "GATEHOUSE_PORT": str(closed_port()),
    }


def run(environment: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["run", *args], env=environment)


def one_line_failure(result: Result) -> str:
    """The start failed with exit 1 and said why in exactly one line, without a traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("✗ ") and " — " in line
    return line


def test_a_bot_token_slack_refuses_is_one_line(healthy: dict[str, str]) -> None:
    line = one_line_failure(run({**healthy, "SLACK_BOT_TOKEN": "xoxb-1-2-not-the-token"}))
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in line
    assert "OAuth & Permissions" in line


def test_slack_out_of_reach_is_one_line(healthy: dict[str, str]) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}/api/"
    line = one_line_failure(run({**healthy, "GATEHOUSE_SLACK_API_URL": unreachable}))
    assert f"Slack is unreachable at {unreachable} (Connection refused)" in line


def test_an_app_token_socket_mode_refuses_is_one_line(healthy: dict[str, str]) -> None:
    socket_mode = {**healthy, "GATEHOUSE_MODE": "socket", "SLACK_APP_TOKEN": "xapp-1-A0-1-nope"}
    line = one_line_failure(run(socket_mode))
    assert "Slack refused SLACK_APP_TOKEN for Socket Mode (invalid_auth)" in line
    assert "connections:write" in line


def test_vault_out_of_reach_is_one_line(healthy: dict[str, str]) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    line = one_line_failure(run({**healthy, "VAULT_ADDR": address}))
    assert f"Vault at {address} is unreachable (connection refused)" in line


def test_a_sealed_vault_is_one_line(healthy: dict[str, str], vault: VaultEmulator) -> None:
    vault.fail_next(10, 503)  # what a sealed Vault answers, its health endpoint included
    line = one_line_failure(run(healthy))
    assert f"Vault at {vault.url} is sealed — unseal it" in line


def test_a_vault_token_vault_refuses_is_one_line(healthy: dict[str, str]) -> None:
    line = one_line_failure(run({**healthy, "VAULT_TOKEN": "hvs.revoked-long-ago"}))
    assert "Vault refused VAULT_TOKEN (permission denied)" in line
    assert "revoked-long-ago" not in line


def test_a_database_out_of_reach_is_one_line_without_its_password(
    healthy: dict[str, str],
) -> None:
    url = f"postgresql://gatehouse:Sup3rS3cret@127.0.0.1:{closed_port()}/gatehouse"
    line = one_line_failure(run({**healthy, "DATABASE_URL": url}))
    assert "Cannot use the database at postgresql://gatehouse:" in line
    assert "Connection refused" in line and "Sup3rS3cret" not in line


def test_a_missing_sqlite_database_is_one_line_and_not_created(
    healthy: dict[str, str], isolated: Path
) -> None:
    absent = isolated / "absent.db"
    line = one_line_failure(run({**healthy, "DATABASE_URL": f"sqlite:///{absent}"}))
    assert f"No database at {absent} yet — run `gatehouse db upgrade`" in line
    assert not absent.exists()


def test_a_database_behind_the_migrations_is_one_line(
    healthy: dict[str, str], isolated: Path
) -> None:
    behind = f"sqlite:///{isolated / 'behind.db'}"
    migrate.upgrade(behind, "0001")
    line = one_line_failure(run({**healthy, "DATABASE_URL": behind}))
    assert f"is at revision 0001, not {migrate.head_revision()}" in line


def test_a_busy_port_is_one_line(healthy: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_failure(run({**healthy, "GATEHOUSE_PORT": str(port)}))
    assert f"Cannot listen on 127.0.0.1:{port}" in line


def test_an_unexpected_error_is_logged_with_its_traceback(
    healthy: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> bootstrap.Gatehouse:
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(bootstrap, "build", broken)
    result = run(healthy)
    assert result.exit_code == 1
    (record,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert record["level"] == "error"
    assert record["event"] == "gatehouse run stopped on an unexpected error"
    assert record["exception"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: something nobody foresaw" in record["exception"]


def test_an_empty_environment_lists_every_missing_setting_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """As `env -i PATH=... make run` in a fresh clone: the real process, no settings at all."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--migrate"],
        env={"PATH": os.environ["PATH"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    named = [line.removeprefix("✗ ").split(":")[0] for line in result.stderr.splitlines()]
    assert named == [
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "GATEHOUSE_POLICY",
    ]
    assert all(line.startswith("✗ ") for line in result.stderr.splitlines())
    assert list(tmp_path.iterdir()) == []  # no database file


UNSIGNED = (
    "audit checkpoints are not signed: GATEHOUSE_AUDIT_SIGNING_KEY is not set — make a key with "
    "`gatehouse audit keygen` (`gatehouse doctor` fails until it is set)"
)


@pytest.mark.parametrize("signing_key", [True, False], ids=["signing key", "no signing key"])
def test_a_started_bot_logs_one_start_line_and_stops_cleanly_on_sigterm(
    healthy: dict[str, str], isolated: Path, signing_key: bool
) -> None:
    database = isolated / "fresh.db"
    environment = {**os.environ, **healthy, "DATABASE_URL": f"sqlite:///{database}"}
    environment.pop("GATEHOUSE_AUDIT_SIGNING_KEY", None)
    if signing_key:
        environment["GATEHOUSE_AUDIT_SIGNING_KEY"] = new_key()[0]
    port = healthy["GATEHOUSE_PORT"]
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--migrate"],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert bot.poll() is None, bot.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the bot did not come up"
            time.sleep(0.05)
        bot.send_signal(signal.SIGTERM)
        _, stderr = bot.communicate(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert bot.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines()]
    assert [record["event"] for record in records] == [
        f"database sqlite:///{database} upgraded from nothing to {migrate.head_revision()}",
        *([] if signing_key else [UNSIGNED]),
        f"Gatehouse started: HTTP mode, listening on 127.0.0.1:{port}, "
        f"database sqlite:///{database}",
        "Gatehouse stopped",
    ]  # no Bolt warning about an unused token, no reconcile warning
