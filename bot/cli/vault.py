"""`gatehouse vault ...`: bring Vault and our records into agreement."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer

from bot import bootstrap
from bot.cli.common import (
    checked_database_url,
    database_errors,
    fail,
    no_database_at,
    one_shot,
    settings_or_exit,
    sqlite_file_missing,
)
from bot.cli.output import Tracker, progress, show_table
from bot.domain.ports import CredentialInventory, LiveToken
from bot.policy import PolicyError
from bot.services.sweeps import ReconcileReport, reconcile_vault

vault_app = typer.Typer(help="Work with the Vault side of Gatehouse.", no_args_is_help=True)


class _ReportedInventory:
    """Vault's inventory, each listing a step of the progress bar and each revocation counted."""

    def __init__(self, inventory: CredentialInventory, tracker: Tracker) -> None:
        self._inventory = inventory
        self._tracker = tracker
        self._revoked = 0
        self.tokens: dict[str, LiveToken] = {}

    def live_tokens(self) -> Sequence[LiveToken]:
        self._tracker.describe("Listing the tokens Gatehouse made in Vault")
        tokens = self._inventory.live_tokens()
        self.tokens = {token.accessor: token for token in tokens}
        self._tracker.advance()
        self._tracker.describe(f"Checking {len(tokens)} tokens against our records")
        return tokens

    def revoke_token(self, *, accessor: str) -> datetime:
        confirmed = self._inventory.revoke_token(accessor=accessor)
        self._count_revoked()
        return confirmed

    def list_leases(self, prefix: str) -> list[str]:
        self._tracker.describe(f"Listing leases under {prefix}")
        leases = self._inventory.list_leases(prefix)
        self._tracker.advance()
        return leases

    def revoke_lease(self, *, lease_id: str) -> datetime:
        confirmed = self._inventory.revoke_lease(lease_id=lease_id)
        self._count_revoked()
        return confirmed

    def _count_revoked(self) -> None:
        self._revoked += 1
        self._tracker.describe(f"Revoked {self._revoked} orphans")


RECONCILE_AGAIN = (
    "nothing is known of what Vault could not be asked; `gatehouse doctor` says why Vault "
    "failed, then run this again"
)


@vault_app.command("reconcile")
def reconcile(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List what would be revoked (and which interrupted issues failed), and change "
            "nothing.",
        ),
    ] = False,
) -> None:
    """Revoke what Vault holds for Gatehouse that no live grant or open incident owns."""
    settings = settings_or_exit()
    url = checked_database_url(settings)
    missing = sqlite_file_missing(url)
    if missing is not None:
        fail(no_database_at(missing))
    with database_errors(url):
        try:
            gatehouse = bootstrap.build(settings)
        except (bootstrap.NotReady, PolicyError) as error:
            typer.echo(f"✗ {error}", err=True)
            raise typer.Exit(2) from None
        # One step for the tokens, one per resource whose leases are listed.
        steps = 1 + sum(1 for rule in gatehouse.policy.resources.values() if rule.vault.path)
        with progress("Reconciling Vault", total=steps) as tracker:
            inventory = _ReportedInventory(gatehouse.broker, tracker)
            report = reconcile_vault(
                uow=gatehouse.uow,
                policy=gatehouse.policy,
                inventory=inventory,
                clock=bootstrap.utc_now,
                dry_run=dry_run,
            )
        gatehouse.engine.dispose()
    found = report.interrupted_grants or report.revoked_tokens or report.revoked_leases
    # What Vault could not be asked is unknown: no "nothing to revoke" that would read as clean.
    if found or not report.errors:
        if dry_run:
            _show_plan(report, inventory.tokens)
        else:
            _show_report(report)
    for problem in dict.fromkeys(one_shot(error) for error in report.errors):
        typer.echo(f"✗ {problem} — {RECONCILE_AGAIN}", err=True)
    if report.errors:
        raise typer.Exit(1)


def _show_report(report: ReconcileReport) -> None:
    counts = [
        ("Interrupted issues failed (to be retried)", len(report.interrupted_grants)),
        ("Orphan tokens revoked", len(report.revoked_tokens)),
        ("Orphan leases revoked", len(report.revoked_leases)),
    ]
    show_table(
        ["", "count"],
        [(what, str(count)) for what, count in counts],
        title="Vault reconciled",
        plain=lambda: "\n".join(f"{what}: {count}" for what, count in counts),
    )


def _show_plan(report: ReconcileReport, tokens: dict[str, LiveToken]) -> None:
    """What a real run would do, one line per item, so it can be checked before it is done."""
    rows: list[tuple[str, str, str]] = []
    for grant_id in report.interrupted_grants:
        rows.append(("fail (retry)", f"grant {grant_id}", "its issue was interrupted"))
    for accessor in report.revoked_tokens:
        token = tokens.get(accessor)
        owner = ""
        if token is not None:
            owner = f"incident {token.incident_id}" + (
                f", grant {token.grant_id}" if token.grant_id else " (incident token)"
            )
        rows.append(("revoke", f"token {accessor}", owner))
    for lease_id in report.revoked_leases:
        rows.append(("revoke", f"lease {lease_id}", "no live grant of its resource"))
    heading = "Dry run: nothing was changed. A reconcile would:"
    if not rows:
        typer.echo("Dry run: nothing was changed, and a reconcile would revoke nothing.")
        return
    show_table(
        ["would", "what", "why / owner"],
        rows,
        title=heading,
        plain=lambda: "\n".join(
            [
                heading,
                *(f"  {act} {what}" + (f" ({why})" if why else "") for act, what, why in rows),
            ]
        ),
    )
