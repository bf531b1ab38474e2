"""The `gatehouse` command line. Each command group lives in its own module."""

import typer

from bot.cli.audit import audit_app
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
    # An unexpected error is logged with a plain traceback, never drawn in a terminal box.
    pretty_exceptions_enable=False,
)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(vault_app, name="vault")
app.command("doctor")(doctor)
app.command("config")(config)
app.command("run")(run)


def main() -> None:
    app()
