"""What every command needs: settings (environment and .env) with errors that end the command."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.config import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(f"✗ Configuration problem:\n{error}", err=True)
        raise typer.Exit(2) from None


def database_url() -> str:
    """DATABASE_URL from the environment or .env, else the embedded SQLite file."""
    return settings_or_exit().database_url


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Say in one line why the database cannot be used, instead of a traceback."""
    try:
        yield
    except ValueError as error:
        typer.echo(f"✗ {error}", err=True)
        raise typer.Exit(1) from None
    except OperationalError as error:
        cause = str(error.orig).splitlines()[0]
        typer.echo(f"✗ Cannot use the database at {shown_url(url)}: {cause}", err=True)
        raise typer.Exit(1) from None
