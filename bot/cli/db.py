"""`gatehouse db ...` commands: create and migrate the database schema."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.store import migrate

DEFAULT_DATABASE_URL = "sqlite:///gatehouse.db"

db_app = typer.Typer(help="Create and migrate the database schema.", no_args_is_help=True)


def _database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _plain_errors(url: str) -> Iterator[None]:
    """Say in one line why the database cannot be used, instead of a traceback."""
    try:
        yield
    except ValueError as error:
        typer.echo(f"✗ {error}", err=True)
        raise typer.Exit(1) from None
    except OperationalError as error:
        cause = str(error.orig).splitlines()[0]
        typer.echo(f"✗ Cannot use the database at {_shown(url)}: {cause}", err=True)
        raise typer.Exit(1) from None


def _described(revision: str | None) -> str:
    return "an empty database" if revision is None else f"revision {revision}"


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option("--revision", help="Revision to upgrade to.")] = "head",
) -> None:
    """Apply migrations up to a revision (the latest by default). Safe to run again."""
    url = _database_url()
    with _plain_errors(url):
        before = migrate.current_revision(url)
        migrate.upgrade(url, revision)
        after = migrate.current_revision(url)
    if before == after:
        typer.echo(f"{_shown(url)} is already at {_described(after)}; nothing to do.")
    else:
        typer.echo(f"Upgraded {_shown(url)} from {_described(before)} to {_described(after)}.")


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Revision to go back to; 'base' drops all.")],
) -> None:
    """Undo migrations down to a revision."""
    url = _database_url()
    with _plain_errors(url):
        before = migrate.current_revision(url)
        migrate.downgrade(url, revision)
        after = migrate.current_revision(url)
    if before == after:
        typer.echo(f"{_shown(url)} is already at {_described(after)}; nothing to do.")
    else:
        typer.echo(f"Downgraded {_shown(url)} from {_described(before)} to {_described(after)}.")


@db_app.command("current")
def current() -> None:
    """Show the revision the database is at, and whether it is the latest."""
    url = _database_url()
    with _plain_errors(url):
        revision = migrate.current_revision(url)
    head = migrate.head_revision()
    if revision == head:
        typer.echo(f"{_shown(url)} is at revision {revision}, the latest.")
    elif revision is None:
        typer.echo(f"{_shown(url)} has no schema yet; run `gatehouse db upgrade` (latest: {head}).")
    else:
        typer.echo(
            f"{_shown(url)} is at revision {revision}; the latest is {head}. "
            "Run `gatehouse db upgrade`."
        )
