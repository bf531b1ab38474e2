"""Bad input to `gatehouse` ends in one line on stderr and a non-zero exit, never a traceback;
read-only commands never create a database; destructive commands ask first.

Every case goes through the root command (`bot.cli.app`) as the installed program does; one
runs the real process too.
"""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner, Result

from bot.cli import app, db
from bot.store import SqlUnitOfWorkFactory, migrate
from tests.integration.test_audit_cli import fill

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
EXAMPLE_TESTS = EXAMPLE_POLICY.with_name("policy.example.tests.yaml")
PASSWORD = "s3cret-pw"
runner = CliRunner()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no stray .env); DATABASE_URL names a file not there yet."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{work / 'gatehouse.db'}")
    monkeypatch.setenv("GATEHOUSE_POLICY", str(EXAMPLE_POLICY))
    return work


def gatehouse(*args: str, stdin: str | None = None) -> Result:
    result = runner.invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an unexpected exception is a failure, with its traceback
    return result


def assert_one_line(result: Result, code: int, says: str) -> str:
    """Exactly one non-empty line, on stderr; nothing on stdout; no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("✗ "), lines[0]
    assert says in lines[0]
    return lines[0]


@dataclass(frozen=True)
class BadInput:
    args: tuple[str, ...]
    code: int
    says: str
    prepare: Callable[[Path], None] = lambda _work: None
    env: Callable[[Path], dict[str, str]] = lambda _work: {}


def _empty_sqlite_file(work: Path) -> None:
    (work / "gatehouse.db").touch()


def _not_a_database(work: Path) -> None:
    (work / "gatehouse.db").write_text("these are not the tables you are looking for")


def _a_directory_in_its_place(work: Path) -> None:
    (work / "gatehouse.db").mkdir()


def _garbage_key(work: Path) -> None:
    (work / "audit.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n")


def _migrated(work: Path) -> None:
    migrate.upgrade(f"sqlite:///{work / 'gatehouse.db'}")


def _existing_key(work: Path) -> None:
    (work / "gatehouse-audit.pub").write_text("the key that verifies last year's checkpoints")


def _database_url(url: str) -> Callable[[Path], dict[str, str]]:
    return lambda _work: {"DATABASE_URL": url}


def _in_missing_directory(work: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{work / 'nowhere' / 'gatehouse.db'}"}


HEAD = migrate.head_revision()
BAD_PORT = f"postgresql://gatehouse:{PASSWORD}@db.internal:fivefourthreetwo/gatehouse"
BAD_INPUTS = {
    "upgrade to an unknown revision": BadInput(
        ("db", "upgrade", "--revision", "9999"), 2, "9999: no such revision"
    ),
    "downgrade to an ambiguous revision": BadInput(
        ("db", "downgrade", "00", "--yes"), 2, "Multiple revisions start with '00'", _migrated
    ),
    "downgrade head on an empty database": BadInput(
        ("db", "downgrade", "head"), 2, "no revision yet: nothing to downgrade", _empty_sqlite_file
    ),
    "downgrade a database that is not there": BadInput(
        ("db", "downgrade", "head"), 1, "no database at"
    ),
    "upgrade to a revision below the database's": BadInput(
        ("db", "upgrade", "--revision", "0003"), 2, f"0003 is not above revision {HEAD}", _migrated
    ),
    "verify with a missing public key": BadInput(
        ("audit", "verify", "--public-key", "missing.pub"),
        2,
        "cannot read the public key missing.pub: No such file or directory",
    ),
    "verify with a public key that is not PEM": BadInput(
        ("audit", "verify", "--public-key", "audit.pub"),
        2,
        "audit.pub is not an Ed25519 public key in PEM",
        _garbage_key,
    ),
    "verify with a malformed anchor": BadInput(
        ("audit", "verify", "--anchor", "nonsense"), 2, "'--anchor': 'nonsense' is not SEQ:HASH"
    ),
    "database file that is not a database": BadInput(
        ("db", "current"), 1, "file is not a database", _not_a_database
    ),
    "verify a database with no schema": BadInput(
        ("audit", "verify"), 1, "has no schema yet, so no audit trail", _empty_sqlite_file
    ),
    "export from a database with no schema": BadInput(
        ("audit", "export", "--incident", "INC-1"),
        1,
        "has no schema yet, so no audit trail; run `gatehouse db upgrade`",
        _empty_sqlite_file,
    ),
    "database path that is a directory": BadInput(
        ("db", "upgrade"), 1, "gatehouse.db is a directory", _a_directory_in_its_place
    ),
    "database in a directory that does not exist": BadInput(
        ("db", "upgrade"), 1, "nowhere does not exist", env=_in_missing_directory
    ),
    "DATABASE_URL with a non-numeric port": BadInput(
        ("db", "current"), 2, "DATABASE_URL: the port must be a number", env=_database_url(BAD_PORT)
    ),
    "DATABASE_URL that does not parse": BadInput(
        ("audit", "verify"), 2, "DATABASE_URL: not a database URL", env=_database_url("sqlite:")
    ),
    "DATABASE_URL of an in-memory database": BadInput(
        ("db", "upgrade"),
        2,
        "an in-memory SQLite database keeps nothing",
        env=_database_url("sqlite://"),
    ),
    "DATABASE_URL of another database": BadInput(
        ("db", "current"),
        2,
        "DATABASE_URL: must be a sqlite:/// or postgresql:// URL",
        env=_database_url(f"mysql://root:{PASSWORD}@localhost/gatehouse"),
    ),
    "PostgreSQL that does not answer": BadInput(
        ("db", "current"),
        1,
        "Cannot use the database at postgresql://gatehouse:***@127.0.0.1:1/gatehouse",
        env=_database_url(f"postgresql://gatehouse:{PASSWORD}@127.0.0.1:1/gatehouse"),
    ),
    "--database with a non-numeric port": BadInput(
        ("audit", "verify", "--database", BAD_PORT), 2, "--database: the port must be a number"
    ),
    "--database of another database": BadInput(
        ("db", "current", "--database", f"mysql://root:{PASSWORD}@localhost/gatehouse"),
        2,
        "--database: must be a sqlite:/// or postgresql:// URL",
    ),
    "--database naming a file that is not there": BadInput(
        ("audit", "export", "--incident", "INC-1", "--database", "elsewhere.db"),
        1,
        "no database at elsewhere.db; check the path given to --database",
    ),
    "explain without a resource": BadInput(
        ("policy", "explain"),
        2,
        "known resources: feature-store-rw, inference-logs-ro, serving-cluster-exec",
    ),
    "explain with no policy file": BadInput(
        ("policy", "explain"),
        1,
        "missing.yaml: file not found",
        env=lambda _work: {"GATEHOUSE_POLICY": "missing.yaml"},
    ),
    "test expectations of a policy that is not there": BadInput(
        ("policy", "test", str(EXAMPLE_TESTS), "--policy", "missing.yaml"),
        1,
        "missing.yaml: file not found",
    ),
    "explain an unknown resource": BadInput(
        ("policy", "explain", "gpu-nodes"), 1, "There is no resource called 'gpu-nodes'"
    ),
    "check two different policy files": BadInput(
        ("policy", "check", str(EXAMPLE_POLICY), "--policy", "other.yaml"),
        2,
        "two policy files given",
    ),
    "export without an incident": BadInput(
        ("audit", "export"), 2, "Missing option '--incident' (see `gatehouse audit export --help`)"
    ),
    "an unknown command": BadInput(("dbs",), 2, "No such command 'dbs'"),
    "an unknown option": BadInput(("db", "current", "--verbose"), 2, "No such option: --verbose"),
    "keygen over an existing key": BadInput(
        ("audit", "keygen"), 2, "gatehouse-audit.pub already exists", _existing_key
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_and_a_non_zero_exit(
    case: BadInput, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.prepare(sandbox)
    for name, value in case.env(sandbox).items():
        monkeypatch.setenv(name, value)
    before = sorted(sandbox.rglob("*"))

    line = assert_one_line(gatehouse(*case.args), case.code, case.says)

    assert PASSWORD not in line
    assert sorted(sandbox.rglob("*")) == before  # bad input creates nothing


def test_the_real_program_prints_one_line_for_bad_input(sandbox: Path) -> None:
    environment = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade", "--revision", "9999"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"✗ 9999: no such revision; the revisions are 0001 to {HEAD}, and base, head or a "
        "relative +N"
    ]
    assert list(sandbox.iterdir()) == []


READ_ONLY = {
    "db current": ("db", "current"),
    "audit verify": ("audit", "verify"),
    "audit export": ("audit", "export", "--incident", "INC-20261123-latency"),
    "vault reconcile --dry-run": ("vault", "reconcile", "--dry-run"),
}


@pytest.mark.parametrize("args", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_read_only_commands_report_a_missing_database_and_create_nothing(
    args: tuple[str, ...], sandbox: Path
) -> None:
    result = gatehouse(*args)

    assert_one_line(
        result, 1, f"no database at {sandbox / 'gatehouse.db'}; run `gatehouse db upgrade`"
    )
    assert list(sandbox.iterdir()) == []


def test_doctor_reports_a_missing_database_and_creates_nothing(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SLACK_BOT_TOKEN", "VAULT_ADDR", "VAULT_TOKEN", "GATEHOUSE_PAGERDUTY_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    result = gatehouse("doctor")

    assert result.exit_code == 1
    assert f"✗ database: no database at {sandbox / 'gatehouse.db'}" in result.stdout
    assert "fix: run `gatehouse db upgrade`" in result.stdout
    assert list(sandbox.iterdir()) == []


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = gatehouse(flag)

    assert result.exit_code == 0
    assert result.stdout == f"gatehouse {version('gatehouse')}\n"


def _commands(command: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in command.commands.items():
        if isinstance(sub, TyperGroup):
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name)


ROOT = get_command(app)
assert isinstance(ROOT, TyperGroup)
COMMANDS = list(_commands(ROOT))


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(path) or "gatehouse" for path in COMMANDS])
def test_h_is_help_and_options_have_readable_placeholders(path: tuple[str, ...]) -> None:
    short = gatehouse(*path, "-h")
    long = gatehouse(*path, "--help")

    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: gatehouse {' '.join(path)}".rstrip())
    options = short.stdout.split("Options:")[1]
    assert "<" not in options, options  # no <bool>, <str>, <list[str]>, <path>
    assert "╭" not in short.stdout  # plain help, no boxes


@pytest.mark.parametrize(
    "args",
    [
        ("policy", "check", str(EXAMPLE_POLICY)),
        ("policy", "check", "--policy", str(EXAMPLE_POLICY)),
        ("policy", "check", str(EXAMPLE_POLICY), "--policy", str(EXAMPLE_POLICY)),
        ("policy", "explain", "inference-logs-ro", "--policy", str(EXAMPLE_POLICY)),
        ("policy", "test", str(EXAMPLE_TESTS), "--policy", str(EXAMPLE_POLICY)),
    ],
    ids=["check FILE", "check --policy", "check both, the same", "explain", "test"],
)
def test_policy_commands_take_the_file_as_policy(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEHOUSE_POLICY", str(tmp_path / "not-this-one.yaml"))

    result = gatehouse(*args)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.fixture
def migrated(
    database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A database at the latest revision with three audit events, named by DATABASE_URL."""
    fill(SqlUnitOfWorkFactory(engine), count=3)
    engine.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def _database_name(url: str) -> str:
    return Path(url).name if url.startswith("sqlite") else url.rsplit("/", 1)[1]


def test_downgrade_head_on_an_empty_database_is_one_line(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).touch()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)

    result = gatehouse("db", "downgrade", "head")

    assert_one_line(result, 2, "the database has no revision yet: nothing to downgrade")


def test_downgrade_with_yes_lists_what_it_drops_and_says_the_audit_trail_goes(
    migrated: str,
) -> None:
    result = gatehouse("db", "downgrade", "base", "--yes")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(f"from revision {HEAD} to base undoes:")
    assert lines[1].startswith(f"  {HEAD}  ")
    assert any(line.startswith("  0001  Initial schema") for line in lines)
    assert (
        "⚠ This deletes the audit trail: audit_events (3 rows) and audit_checkpoints (0 rows) "
        "dropped for good" in result.stdout
    )
    assert lines[-1].endswith("to an empty database.")
    assert migrate.current_revision(migrated) is None


def test_downgrade_that_keeps_the_audit_tables_says_nothing_of_them(migrated: str) -> None:
    result = gatehouse("db", "downgrade", "0005", "--yes")

    assert result.exit_code == 0, result.output
    assert "deletes" not in result.stdout
    assert migrate.current_revision(migrated) == "0005"


def test_downgrade_off_a_terminal_without_yes_drops_nothing(migrated: str) -> None:
    result = gatehouse("db", "downgrade", "base")

    assert result.exit_code == 2
    assert result.stderr == "✗ not a terminal, so nothing was dropped: pass --yes to downgrade\n"
    assert "This deletes the audit trail" in result.stdout  # what it would have dropped
    assert migrate.current_revision(migrated) == HEAD


def test_downgrade_on_a_terminal_needs_the_database_name_typed(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_on_a_terminal", lambda: True)
    name = _database_name(migrated)

    refused = gatehouse("db", "downgrade", "base", stdin="yes\n")

    assert refused.exit_code == 1
    assert refused.stderr == "✗ not confirmed; nothing was dropped\n"
    assert f"Type the database's name ({name}) to go on" in refused.stdout
    assert migrate.current_revision(migrated) == HEAD

    confirmed = gatehouse("db", "downgrade", "base", stdin=f"{name}\n")

    assert confirmed.exit_code == 0, confirmed.output
    assert migrate.current_revision(migrated) is None


def test_keygen_replaces_a_key_only_with_force(sandbox: Path) -> None:
    first = gatehouse("audit", "keygen")
    assert first.exit_code == 0, first.output
    key = (sandbox / "gatehouse-audit.pub").read_bytes()

    refused = gatehouse("audit", "keygen")

    assert refused.exit_code == 2
    assert "pass --force to replace it" in refused.stderr
    assert "GATEHOUSE_AUDIT_SIGNING_KEY" not in refused.output  # no key nobody can verify
    assert (sandbox / "gatehouse-audit.pub").read_bytes() == key

    forced = gatehouse("audit", "keygen", "--force")

    assert forced.exit_code == 0, forced.output
    assert "GATEHOUSE_AUDIT_SIGNING_KEY=" in forced.stdout
    assert (sandbox / "gatehouse-audit.pub").read_bytes() != key


def test_database_option_names_the_database_over_database_url(sandbox: Path) -> None:
    """`--database FILE` (or URL) is the database a command works on, whatever DATABASE_URL says:
    the demo prints `gatehouse audit verify --database …` for a reader to run as printed."""
    elsewhere = sandbox / "elsewhere.db"
    upgraded = gatehouse("db", "upgrade", "--database", str(elsewhere))
    assert upgraded.exit_code == 0, upgraded.output
    assert elsewhere.exists() and not (sandbox / "gatehouse.db").exists()

    current = gatehouse("db", "current", "--database", f"sqlite:///{elsewhere}")
    assert current.exit_code == 0, current.output
    assert f"is at revision {HEAD}, the latest" in current.stdout

    verified = gatehouse("audit", "verify", "--database", str(elsewhere))
    assert verified.exit_code == 0, verified.output
    assert not (sandbox / "gatehouse.db").exists()
