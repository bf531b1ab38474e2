"""When the database or Vault is down: readiness names the database (Vault never takes a replica
out of service), and users get a clear answer."""

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot import bootstrap
from bot.domain.incident import Severity
from bot.services import incidents
from bot.slack.errors import user_message
from bot.store import SqlUnitOfWorkFactory, create_engine_for
from tests.harness import bot_settings
from tests.unit.example_policy import example_policy


class Broker:
    def __init__(self, reachable: bool) -> None:
        self._reachable = reachable

    def health(self) -> str:
        return "active" if self._reachable else "unreachable"


def gatehouse(database_url: str, *, vault_up: bool) -> bootstrap.Gatehouse:
    engine = create_engine_for(database_url)
    settings = bot_settings(database_url=database_url)
    broker: Any = Broker(vault_up)
    policy = example_policy()
    return bootstrap.Gatehouse(settings, policy, engine, SqlUnitOfWorkFactory(engine), broker)


def test_readiness_names_the_database_and_not_vault(engine: Any, database_url: str) -> None:
    """While Vault is down the bot still answers (approved, delivered when Vault is back), so
    Vault is no reason to leave the Service."""
    assert bootstrap.readiness(gatehouse(database_url, vault_up=True)) == {}
    vault_down = gatehouse(database_url, vault_up=False)
    assert bootstrap.readiness(vault_down) == {}
    assert bootstrap.health_details(vault_down)() == {"vault": "unreachable"}
    down = gatehouse("postgresql://postgres@127.0.0.1:1/gatehouse", vault_up=True)
    assert bootstrap.readiness(down) == {"database": "OperationalError"}


def test_a_user_hears_that_nothing_was_changed_when_the_database_is_down() -> None:
    uow = SqlUnitOfWorkFactory(create_engine_for("postgresql://postgres@127.0.0.1:1/gatehouse"))
    with pytest.raises(OperationalError) as failure:
        incidents.start_incident(
            uow=uow,
            title="x",
            severity=Severity.SEV2,
            opened_by="U1",
            channel_id="C1",
            channel_name="inc-x",
            now=datetime.now(UTC),
        )
    message = user_message(failure.value)
    assert "nothing was changed" in message
