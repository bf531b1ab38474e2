"""The periodic reconcile job says once what kept it from finishing, however many Vault calls
of the run failed for that one reason."""

import logging
from datetime import datetime
from typing import Any

import pytest

from bot import bootstrap
from bot.config import Settings
from bot.domain.errors import CredentialDenied, CredentialUnavailable
from bot.domain.ports import LiveToken
from tests.unit.example_policy import example_policy
from tests.unit.fakes import MemoryStore

DOWN = "Vault is unavailable (connection refused) when trying to log in; Gatehouse will retry."


class VaultDown:
    """Every call fails the same way, as when the bot cannot log in to Vault."""

    def __init__(self, denied_paths: tuple[str, ...] = ()) -> None:
        self.denied_paths = denied_paths

    def live_tokens(self) -> list[LiveToken]:
        raise CredentialUnavailable(DOWN)

    def list_leases(self, prefix: str) -> list[str]:
        if prefix in self.denied_paths:
            raise CredentialDenied(f"Vault denied permission to list the leases of {prefix}")
        raise CredentialUnavailable(DOWN)

    def revoke_token(self, *, accessor: str) -> datetime:
        raise AssertionError("nothing to revoke")

    def revoke_lease(self, *, lease_id: str) -> datetime:
        raise AssertionError("nothing to revoke")


def run_reconcile_job(broker: Any) -> None:
    """The reconcile job as the scheduler runs it; only the store and Vault take part."""
    nothing: Any = None
    store: Any = MemoryStore()
    gatehouse = bootstrap.Gatehouse(
        Settings(_env_file=None), example_policy(), nothing, store, broker
    )
    (job,) = [job for job in bootstrap.build_jobs(gatehouse, nothing) if job.name == "reconcile"]
    job.run()


@pytest.fixture(autouse=True)
def _warnings_recorded(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever level an earlier test left on the root logger, warnings reach caplog."""
    caplog.set_level(logging.WARNING)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_vault_down_is_logged_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    paths = [rule.vault.path for rule in example_policy().resources.values() if rule.vault.path]
    assert len(paths) >= 2  # the run asks Vault once for tokens and once per such resource
    run_reconcile_job(VaultDown())
    assert warnings(caplog) == [f"reconcile: {DOWN}"]


def test_distinct_problems_are_each_logged(caplog: pytest.LogCaptureFixture) -> None:
    path = next(rule.vault.path for rule in example_policy().resources.values() if rule.vault.path)
    assert path is not None
    run_reconcile_job(VaultDown(denied_paths=(path,)))
    assert warnings(caplog) == [
        f"reconcile: {DOWN}",
        f"reconcile: Vault denied permission to list the leases of {path}",
    ]
