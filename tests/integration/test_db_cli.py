"""`gatehouse db upgrade | downgrade | current`, against DATABASE_URL."""

from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli.db import db_app
from bot.store import migrate


def _run(*args: str) -> str:
    result = CliRunner().invoke(db_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_upgrade_current_and_downgrade(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    head = migrate.head_revision()
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).touch()  # an empty SQLite database

    assert "has no schema yet" in _run("current")
    assert f"from an empty database to revision {head}" in _run("upgrade")
    assert "already at" in _run("upgrade", "--revision", "head")
    assert f"is at revision {head}, the latest" in _run("current")
    assert f"from revision {head} to an empty database" in _run("downgrade", "base", "--yes")
    assert migrate.current_revision(database_url) is None


def test_the_default_database_is_gatehouse_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    output = _run("upgrade")

    assert "sqlite:///gatehouse.db" in output
    assert (tmp_path / "gatehouse.db").exists()


@pytest.mark.postgres
def test_passwords_are_not_printed(postgres_admin: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with_password = postgres_admin.url.set(password="s3cret")
    monkeypatch.setenv("DATABASE_URL", with_password.render_as_string(hide_password=False))

    output = _run("current")

    assert "s3cret" not in output
    assert "***" in output


@pytest.mark.parametrize(
    ("url", "message", "exit_code"),
    [
        ("postgresql://postgres@127.0.0.1:1/gatehouse", "Cannot use the database at", 1),
        ("mysql://root@localhost/gatehouse", "DATABASE_URL: must be a sqlite:///", 2),
    ],
    ids=["unreachable", "unsupported"],
)
def test_a_database_it_cannot_use_is_one_plain_line(
    url: str, message: str, exit_code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    result = CliRunner().invoke(db_app, ["current"])

    assert result.exit_code == exit_code
    assert message in result.output
    assert "Traceback" not in result.output
