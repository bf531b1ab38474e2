"""What every command needs: settings and a database URL whose problems end the command in one
line, and a root command that reports usage errors in one line too."""

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from bot.config import Settings, SettingsError, load_settings
from bot.store import migrate

UPGRADE_HINT = "run `gatehouse db upgrade`"
_RETRY_PROMISE = re.compile(r"[;,.]?\s*Gatehouse will retry\.?", re.IGNORECASE)


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with `✗ message` on stderr, one line, and exit `code`."""
    typer.echo(f"✗ {message}", err=True)
    raise typer.Exit(code)


def one_shot(message: str) -> str:
    """A message without the promise to retry: the bot retries, a one-shot command does not."""
    return _RETRY_PROMISE.sub("", message).rstrip(" ;,") or message


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        for problem in str(error).splitlines():
            typer.echo(f"✗ {problem}", err=True)
        raise typer.Exit(2) from None


def parsed_url(url: str, source: str = "DATABASE_URL") -> URL:
    """A database URL parsed, or the command ends naming where it came from (never its value:
    the URL may carry a password)."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 (SQLAlchemy reads the port only when asked)
    except ArgumentError:
        fail(f"{source}: not a database URL; use sqlite:///file.db or postgresql://…", 2)
    except ValueError:
        fail(f"{source}: the port must be a number", 2)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        fail(
            f"{source}: an in-memory SQLite database keeps nothing; name a file: sqlite:///gatehouse.db",
            2,
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        fail(f"{source}: must be a sqlite:/// or postgresql:// URL, e.g. sqlite:///gatehouse.db", 2)
    return parsed


def checked_database_url(settings: Settings) -> str:
    parsed_url(settings.database_url)
    return settings.database_url


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        metavar="URL|FILE",
        help="The database: a sqlite:///… or postgresql://… URL, or a SQLite file. "
        "Default: DATABASE_URL, else sqlite:///gatehouse.db.",
        show_default=False,
    ),
]


def database_url(given: str | None = None) -> str:
    """The database a command works on: `--database` when given (a bare path is a SQLite
    file), else DATABASE_URL from the environment or .env, else the embedded SQLite file."""
    if given is None:
        return checked_database_url(settings_or_exit())
    url = given if "://" in given or given.startswith("sqlite:") else f"sqlite:///{given}"
    parsed_url(url, "--database")
    return url


def shown_url(url: str) -> str:
    return parsed_url(url).render_as_string(hide_password=True)


def sqlite_file_missing(url: str) -> Path | None:
    """The file a SQLite URL names when it does not exist (opening it would create it)."""
    path = _sqlite_path(url)
    return None if path is None or path.exists() else path


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, memory, or a URL that does not
    parse (reported elsewhere)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri"):  # a file: URI names its file in its own way
        return None
    return Path(parsed.database)


def no_database_at(path: Path) -> str:
    return f"no database at {path}; {UPGRADE_HINT}"


def existing_database_url(given: str | None = None) -> str:
    """The database of a command that only reads: a SQLite file that is not there is reported,
    never created."""
    url = database_url(given)
    missing = sqlite_file_missing(url)
    if missing is not None and given is not None:
        fail(f"no database at {missing}; check the path given to --database")
    if missing is not None:
        fail(no_database_at(missing))
    return url


def audited_database_url(given: str | None = None) -> str:
    """The database of a command that reads the audit trail: it exists and has a schema."""
    url = existing_database_url(given)
    with database_errors(url):
        revision = migrate.current_revision(url)
    if revision is None:
        fail(f"{shown_url(url)} has no schema yet, so no audit trail; {UPGRADE_HINT}")
    return url


def _sqlite_path_problem(url: str) -> str | None:
    """Why the SQLite file of `url` cannot be opened, in words better than the driver's."""
    path = _sqlite_path(url)
    if path is None:
        return None
    if path.is_dir():
        return f"{path} is a directory, not a database file"
    if not path.parent.is_dir():
        return f"the directory {path.parent} does not exist"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to read and write {path}"
    if not path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        return f"no permission to create {path}"
    return None


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Say in one line why the database cannot be used, instead of a traceback."""
    try:
        yield
    except CommandError as error:  # a revision the migrations do not know
        fail(str(error).splitlines()[0], 2)
    except ValueError as error:
        fail(str(error).splitlines()[0])
    except SQLAlchemyError as error:
        cause = _sqlite_path_problem(url)
        if cause is None:
            orig = error.orig if isinstance(error, DBAPIError) else error
            cause = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        fail(f"Cannot use the database at {shown_url(url)}: {cause}")


class OneLineErrors(TyperGroup):
    """The root command: a usage error is one line naming the command's --help, never a usage
    block; --help and a bare group still print their help."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except UsageError as error:
            hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
            typer.echo(f"✗ {_one_line(error.format_message()).rstrip('.')}{hint}", err=True)
            sys.exit(error.exit_code)
        except ClickException as error:
            typer.echo(f"✗ {_one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("✗ Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())
