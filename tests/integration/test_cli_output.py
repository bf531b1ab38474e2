"""Output for people: tables and progress bars on a terminal, plain lines and no ANSI in a pipe.

The pipe tests run the real `gatehouse` process with its output captured through pipes, with
FORCE_COLOR set (the streams decide, not the environment). The terminal tests give the commands
rich consoles forced into terminal mode; one runs the process on a real pseudo-terminal.
"""

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bot.cli import app, output
from bot.cli.doctor import Check
from bot.policy import explain_resource, load_policy
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from tests.emulators.vault import VaultEmulator
from tests.integration.test_audit_cli import fill
from tests.integration.vault.test_vault_cli import an_orphan_to_reconcile

EVENTS = 3 * output.PROGRESS_STEP + 7  # several steps of the bar and a remainder
EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
ANSI = re.compile(r"\x1b\[")
runner = CliRunner()


def unstyled(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def incident_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite database with EVENTS audit events of one incident, named by DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(url)
    engine = create_engine_for(url)
    try:
        incident = fill(SqlUnitOfWorkFactory(engine), count=EVENTS)
    finally:
        engine.dispose()
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", url)
    return incident


def run_in_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, io.StringIO]:
    """What the commands write to a terminal's stdout and stderr, through forced rich consoles."""
    out, err = io.StringIO(), io.StringIO()
    forced = output.Consoles(
        out=Console(file=out, force_terminal=True, width=120),
        err=Console(file=err, force_terminal=True, width=120),
    )
    monkeypatch.setattr(output, "consoles", lambda: forced)
    return out, err


def test_verify_in_a_pipe_prints_its_plain_line_and_no_progress(incident_id: str) -> None:
    result = run_in_pipe("audit", "verify")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(
        rf"✓ audit chain intact: {EVENTS} events, head {EVENTS} [0-9a-f]{{64}}\n", result.stdout
    )


def test_export_in_a_pipe_is_exactly_the_events(incident_id: str) -> None:
    result = run_in_pipe("audit", "export", "--incident", incident_id)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == list(
        range(1, EVENTS + 1)
    )


def test_policy_explain_in_a_pipe_is_the_plain_text() -> None:
    result = run_in_pipe("policy", "explain", "feature-store-rw", "--policy", str(EXAMPLE_POLICY))

    assert result.returncode == 0, result.stderr
    expected = explain_resource(load_policy(EXAMPLE_POLICY), "feature-store-rw")
    assert result.stdout == expected + "\n"
    assert not ANSI.search(result.stdout + result.stderr)


def test_verify_on_a_terminal_shows_progress_then_a_table(
    incident_id: str, terminal: tuple[io.StringIO, io.StringIO]
) -> None:
    out, err = terminal

    result = runner.invoke(app, ["audit", "verify"])

    assert result.exit_code == 0, result.output
    assert result.output == ""  # everything went through the consoles
    progress = err.getvalue()
    assert "Checking the audit chain" in progress
    assert f"{EVENTS}/{EVENTS}" in progress  # the bar reached the end
    assert ANSI.search(progress)
    table = unstyled(out.getvalue())
    assert "audit chain intact" in table and "│" in table
    assert re.search(rf"│ events\s+│ {EVENTS}\s+│", table)


def test_export_on_a_terminal_shows_progress_and_keeps_stdout_clean(
    incident_id: str, terminal: tuple[io.StringIO, io.StringIO]
) -> None:
    _, err = terminal

    result = runner.invoke(app, ["audit", "export", "--incident", incident_id])

    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == EVENTS
    assert all(line.startswith("{") for line in result.output.splitlines())
    assert f"Reading the events of {incident_id}" in err.getvalue()
    assert f"{EVENTS}/?" in err.getvalue()  # a count, the total being unknown


def test_policy_explain_on_a_terminal_is_a_table(
    terminal: tuple[io.StringIO, io.StringIO],
) -> None:
    out, err = terminal

    result = runner.invoke(
        app, ["policy", "explain", "serving-cluster-exec", "--policy", str(EXAMPLE_POLICY)]
    )

    assert result.exit_code == 0, result.output
    table = unstyled(out.getvalue())
    assert "serving-cluster-exec: kubectl exec into model-serving pods" in table
    assert re.search(r"│ Max TTL\s+│ 1h\s+│", table)
    assert re.search(r"│ Break-glass\s+│ may be used before approval for up to 15m", table)
    assert err.getvalue() == ""


def test_doctor_on_a_terminal_is_a_table_with_the_fixes(
    terminal: tuple[io.StringIO, io.StringIO], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out, _ = terminal
    monkeypatch.chdir(tmp_path)  # no stray .env
    checks = [
        Check("database", True, "reachable, at the latest revision"),
        Check("vault", False, "missing capabilities: sys/leases/revoke (update)", "write it"),
    ]
    monkeypatch.setattr(sys.modules["bot.cli.doctor"], "run_checks", lambda settings: checks)

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    table = unstyled(out.getvalue())
    assert re.search(r"│ ✓\s+│ database\s+│ reachable, at the latest revision", table)
    assert re.search(r"│ ✗\s+│ vault\s+│ missing capabilities.*│ write it", table)


def test_a_real_terminal_gets_the_bar_and_the_table(incident_id: str) -> None:
    """Both streams on a pseudo-terminal: what a person running the command sees."""
    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    environment.pop("FORCE_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "audit", "verify"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            pytest.fail(f"no output for 60 s; so far: {seen!r}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = seen.decode("utf-8", errors="replace")
    assert "Checking the audit chain" in text
    assert "audit chain intact" in text and "│" in text


def test_reconcile_on_a_terminal_shows_its_steps_and_a_table(
    vault: VaultEmulator,
    terminal: tuple[io.StringIO, io.StringIO],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, err = terminal
    an_orphan_to_reconcile(vault, tmp_path, monkeypatch)

    result = runner.invoke(app, ["vault", "reconcile"])

    assert result.exit_code == 0, result.output
    progress = err.getvalue()
    assert "Listing the tokens Gatehouse made in Vault" in progress
    assert "Revoked 1 orphans" in progress
    steps = 1 + sum(1 for r in load_policy(EXAMPLE_POLICY).resources.values() if r.vault.path)
    assert f"{steps}/{steps}" in progress  # the token listing, then each resource's leases
    assert re.search(r"│ Orphan tokens revoked\s+│ 1\s+│", unstyled(out.getvalue()))
