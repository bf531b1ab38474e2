"""`gatehouse vault ...`: bring Vault and our records into agreement."""

from collections.abc import Sequence
from datetime import datetime

import typer

from bot import bootstrap
from bot.cli.common import database_errors, settings_or_exit
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

    def live_tokens(self) -> Sequence[LiveToken]:
        self._tracker.describe("Listing the tokens Gatehouse made in Vault")
        tokens = self._inventory.live_tokens()
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


@vault_app.command("reconcile")
def reconcile() -> None:
    """Revoke what Vault holds for Gatehouse that no live grant or open incident owns."""
    settings = settings_or_exit()
    with database_errors(settings.database_url):
        try:
            gatehouse = bootstrap.build(settings)
        except (bootstrap.NotReady, PolicyError) as error:
            typer.echo(f"✗ {error}", err=True)
            raise typer.Exit(2) from None
        # One step for the tokens, one per resource whose leases are listed.
        steps = 1 + sum(1 for rule in gatehouse.policy.resources.values() if rule.vault.path)
        with progress("Reconciling Vault", total=steps) as tracker:
            report = reconcile_vault(
                uow=gatehouse.uow,
                policy=gatehouse.policy,
                inventory=_ReportedInventory(gatehouse.broker, tracker),
                clock=bootstrap.utc_now,
            )
        gatehouse.engine.dispose()
    _show_report(report)
    for problem in report.errors:
        typer.echo(f"✗ {problem}", err=True)
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
