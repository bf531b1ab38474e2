"""What every command needs: settings (environment and .env) with errors that end the command."""

import typer

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
