"""The `gatehouse` command line. Each command group lives in its own module."""

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from bot import bootstrap
from bot.cli.audit import audit_app
from bot.cli.common import OneLineErrors, settings_or_exit
from bot.cli.config import config
from bot.cli.db import db_app
from bot.cli.doctor import doctor
from bot.cli.policy import policy_app
from bot.cli.vault import vault_app
from bot.config import SLACK_APP_HELP
from bot.log_setup import configure_logging
from bot.policy import PolicyError

app = typer.Typer(
    name="gatehouse",
    help="Incident-scoped, just-in-time access to production systems, from Slack.",
    no_args_is_help=True,
    add_completion=False,
    cls=OneLineErrors,
    # Plain help (no boxes) and plain errors: one line each, never a traceback panel.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(vault_app, name="vault")
app.command("doctor")(doctor)
app.command("config")(config)


def _show_version(asked: bool) -> None:
    if asked:
        try:
            installed = version("gatehouse")
        except PackageNotFoundError:  # run from a source tree that was never installed
            installed = "(not installed)"
        typer.echo(f"gatehouse {installed}")
        raise typer.Exit()


@app.callback()
def gatehouse(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """The options of `gatehouse` itself; each command has its own."""


@app.command("run")
def run() -> None:
    """Start the bot (Socket Mode by default, GATEHOUSE_MODE=http for HTTP)."""
    settings = settings_or_exit()
    configure_logging(level=settings.log_level)
    missing = settings.missing_for_run()
    if missing:
        typer.echo(f"✗ Slack is not configured: {', '.join(missing)} not set.\n", err=True)
        typer.echo(SLACK_APP_HELP, err=True)
        raise typer.Exit(2)
    try:
        bootstrap.start(bootstrap.build(settings))
    except PolicyError as error:
        typer.echo(f"✗ {settings.policy_path} is not a valid policy:\n{error}", err=True)
        raise typer.Exit(2) from None
    except bootstrap.NotReady as error:
        typer.echo(f"✗ {error}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
