"""The `gatehouse` command line. Each command group lives in its own module."""

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from bot.cli.audit import audit_app
from bot.cli.common import OneLineErrors
from bot.cli.config import config
from bot.cli.db import db_app
from bot.cli.doctor import doctor
from bot.cli.policy import policy_app
from bot.cli.run import run
from bot.cli.vault import vault_app

app = typer.Typer(
    name="gatehouse",
    help="Incident-scoped, just-in-time access to production systems, from Slack.",
    no_args_is_help=True,
    add_completion=False,
    cls=OneLineErrors,
    # Plain help (no boxes) and plain errors: one line each; an unexpected error is logged with
    # a plain traceback, never drawn in a terminal box.
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


app.command("run")(run)


def main() -> None:
    app()
