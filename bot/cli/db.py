"""`gatehouse db ...` commands: create and migrate the database schema."""

from collections.abc import Callable
from typing import Annotated

import typer

from bot.cli.common import database_errors, database_url, shown_url
from bot.store import migrate

db_app = typer.Typer(help="Create and migrate the database schema.", no_args_is_help=True)


def _described(revision: str | None) -> str:
    return "an empty database" if revision is None else f"revision {revision}"


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option("--revision", help="Revision to upgrade to.")] = "head",
) -> None:
    """Apply migrations up to a revision (the latest by default). Safe to run again."""
    _migrate(migrate.upgrade, revision, "Upgraded")


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Revision to go back to; 'base' drops all.")],
) -> None:
    """Undo migrations down to a revision."""
    _migrate(migrate.downgrade, revision, "Downgraded")


def _migrate(move: Callable[[str, str], None], revision: str, done: str) -> None:
    url = database_url()
    with database_errors(url):
        before = migrate.current_revision(url)
        move(url, revision)
        after = migrate.current_revision(url)
    if before == after:
        typer.echo(f"{shown_url(url)} is already at {_described(after)}; nothing to do.")
    else:
        typer.echo(f"{done} {shown_url(url)} from {_described(before)} to {_described(after)}.")


@db_app.command("current")
def current() -> None:
    """Show the revision the database is at, and whether it is the latest."""
    url = database_url()
    with database_errors(url):
        revision = migrate.current_revision(url)
    head = migrate.head_revision()
    if revision == head:
        typer.echo(f"{shown_url(url)} is at revision {revision}, the latest.")
    elif revision is None:
        typer.echo(
            f"{shown_url(url)} has no schema yet; run `gatehouse db upgrade` (latest: {head})."
        )
    else:
        typer.echo(
            f"{shown_url(url)} is at revision {revision}; the latest is {head}. "
            "Run `gatehouse db upgrade`."
        )
