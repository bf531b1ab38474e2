"""`gatehouse db ...` commands: create and migrate the database schema."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from bot.cli.common import (
    DatabaseOption,
    database_errors,
    database_url,
    existing_database_url,
    fail,
    no_database_at,
    shown_url,
    sqlite_file_missing,
)
from bot.store import migrate

db_app = typer.Typer(help="Create and migrate the database schema.", no_args_is_help=True)


def _described(revision: str | None) -> str:
    return "an empty database" if revision is None else f"revision {revision}"


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[
        str, typer.Option("--revision", metavar="REVISION", help="Revision to upgrade to.")
    ] = "head",
    database: DatabaseOption = None,
) -> None:
    """Apply migrations up to a revision (the latest by default). Safe to run again."""
    url = database_url(database)
    # A SQLite file that is not there is at no revision: nothing is created for a bad revision.
    with database_errors(url):
        before = None if sqlite_file_missing(url) else migrate.current_revision(url)
    if not _steps_or_nothing_to_do(migrate.upgrade_steps, url, before, revision):
        return
    with database_errors(url):
        migrate.upgrade(url, revision)
        after = migrate.current_revision(url)
    typer.echo(f"Upgraded {shown_url(url)} from {_described(before)} to {_described(after)}.")


def _steps_or_nothing_to_do(
    plan: Callable[[str | None, str], list[migrate.Step]],
    url: str,
    before: str | None,
    revision: str,
) -> list[migrate.Step]:
    """The migrations between `before` and `revision`; a revision that is no way to go ends
    the command in one line, and none to run is said plainly."""
    try:
        steps = plan(before, revision)
    except migrate.RevisionProblem as problem:
        fail(str(problem), 2)
    if not steps:
        typer.echo(f"{shown_url(url)} is already at {_described(before)}; nothing to do.")
    return steps


# A relative revision (-1) is an argument, not an unknown option.
@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def downgrade(
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION", help="Revision to go back to; 'base' drops every table."
        ),
    ],
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask: drop what the downgrade drops."),
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Undo migrations down to a revision. Lists what it drops and asks first: on a terminal,
    type the database's name; elsewhere pass --yes."""
    url = database_url(database)
    missing = sqlite_file_missing(url)
    if missing is not None:
        fail(no_database_at(missing))
    with database_errors(url):
        before = migrate.current_revision(url)
        audit_rows = migrate.audit_rows(url)
    steps = _steps_or_nothing_to_do(migrate.downgrade_steps, url, before, revision)
    if not steps:
        return
    _show_plan(url, before, revision, steps, audit_rows)
    if not yes:
        _confirm_or_exit(url)
    with database_errors(url):
        migrate.downgrade(url, revision)
        after = migrate.current_revision(url)
    typer.echo(f"Downgraded {shown_url(url)} from {_described(before)} to {_described(after)}.")


def _show_plan(
    url: str,
    before: str | None,
    target: str,
    steps: list[migrate.Step],
    audit_rows: dict[str, int],
) -> None:
    typer.echo(f"A downgrade of {shown_url(url)} from {_described(before)} to {target} undoes:")
    width = max(len(step.revision) for step in steps)
    for step in steps:
        typer.echo(f"  {step.revision:<{width}}  {step.summary}")
    dropped = [step.audit_table for step in reversed(steps) if step.audit_table]  # oldest first
    if dropped:
        what = "the audit trail" if "audit_events" in dropped else "the signed audit checkpoints"
        tables = " and ".join(f"{table} ({audit_rows.get(table, 0)} rows)" for table in dropped)
        typer.echo(
            f"⚠ This deletes {what}: {tables} dropped for good; only a backup or an "
            "export (`gatehouse audit export`) keeps it."
        )


def _on_a_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_or_exit(url: str) -> None:
    """Off a terminal nobody can answer: refuse. On one, the database's name must be typed."""
    if not _on_a_terminal():
        fail("not a terminal, so nothing was dropped: pass --yes to downgrade", 2)
    name = _database_name(url)
    answer = typer.prompt(
        f"Type the database's name ({name}) to go on", default="", show_default=False
    )
    if answer.strip() != name:
        fail("not confirmed; nothing was dropped")


def _database_name(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "").name or "memory"
    return parsed.database or ""


@db_app.command("current")
def current(database: DatabaseOption = None) -> None:
    """Show the revision the database is at, and whether it is the latest."""
    url = existing_database_url(database)
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
