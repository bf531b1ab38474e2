"""The composition root builds each part of the running bot once and wires them together at
construction: the Bolt app and the workflows share one Slack client, the workflows arm the
expiry timers of the scheduler that runs the periodic jobs, and the forms' seal comes from the
signing secret every replica has."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette

from bot import bootstrap
from bot.slack.edge import MAX_BODY_BYTES
from bot.slack.metadata import MetadataSeal
from bot.store import migrate
from integrations.slack_web import SlackChat
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.vault import VaultEmulator, running_vault
from tests.harness import bot_settings

ROOT_TOKEN = "hvs.gatehouse-test-root-token"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with running_slack() as emulator:
        yield emulator


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with running_vault(root_token=ROOT_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def gatehouse(
    slack: SlackEmulator, vault: VaultEmulator, tmp_path: Path
) -> Iterator[bootstrap.Gatehouse]:
    database_url = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(database_url)
    built = bootstrap.build(
        bot_settings(
            slack_bot_token=slack.bot_token,
            slack_signing_secret=slack.signing_secret,
            slack_api_url=slack.api_url,
            vault_addr=vault.url,
            vault_token=ROOT_TOKEN,
            database_url=database_url,
        )
    )
    yield built
    built.engine.dispose()


def test_the_app_and_the_workflows_share_one_slack_client(
    gatehouse: bootstrap.Gatehouse,
) -> None:
    bot = bootstrap.assemble(gatehouse)
    assert isinstance(bot.deps.chat, SlackChat)
    assert bot.deps.chat.client is bot.app.client
    assert bot.deps.broker is gatehouse.broker
    assert bot.deps.uow is gatehouse.uow


def test_the_workflows_arm_timers_on_the_scheduler_that_runs_the_periodic_jobs(
    gatehouse: bootstrap.Gatehouse, caplog: pytest.LogCaptureFixture
) -> None:
    bot = bootstrap.assemble(gatehouse)
    assert {"sweep", "reconcile", "vault-health"} <= {job.id for job in bot.scheduler.get_jobs()}

    bot.deps.schedule_expiry("R-NOTHING", datetime.now(UTC) + timedelta(hours=1))
    (timer,) = [job for job in bot.scheduler.get_jobs() if job.id == "expire:R-NOTHING"]
    # Fired, the timer expires through the workflows' dependencies: nothing is due, and
    # nothing fails (an unwired callback would be logged as a failed timer).
    with caplog.at_level(logging.ERROR):
        timer.func(*timer.args)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_forms_are_sealed_with_the_signing_secret_every_replica_shares(
    gatehouse: bootstrap.Gatehouse, slack: SlackEmulator
) -> None:
    bot = bootstrap.assemble(gatehouse)
    signed_elsewhere = MetadataSeal(slack.signing_secret).sign("U0ONCALL1", "R-1")
    assert bot.deps.seal.verify("U0ONCALL1", signed_elsewhere) == "R-1"


def test_http_mode_bounds_its_connections_and_idle_keep_alives() -> None:
    """Unauthenticated clients can hold at most MAX_CONNECTIONS body buffers (each capped and
    read under a deadline by the edge); past that uvicorn answers 503 instead of growing."""
    config = bootstrap.web_server_config(Starlette())
    assert config.limit_concurrency == bootstrap.MAX_CONNECTIONS
    assert config.timeout_keep_alive == bootstrap.KEEP_ALIVE_SECONDS
    assert bootstrap.MAX_CONNECTIONS * MAX_BODY_BYTES <= 128 * 1024 * 1024  # well under 512Mi
