"""Composition root: the one place that builds engine, policy and services from settings.

Nothing happens at import time; `build` does the work when a command asks for it.
"""

from dataclasses import dataclass

from sqlalchemy import Engine

from bot.config import Settings
from bot.domain.rules import AccessPolicy
from bot.policy import load_policy
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate


class NotReady(Exception):
    """Something must be fixed before the bot can start; the message says what."""


@dataclass
class Gatehouse:
    settings: Settings
    policy: AccessPolicy
    engine: Engine
    uow: SqlUnitOfWorkFactory


def build(settings: Settings) -> Gatehouse:
    """Load the policy and connect the database; refuse a database behind the migrations."""
    policy = load_policy(settings.policy_path)
    current = migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    if current != head:
        raise NotReady(
            f"The database is at {current or 'no revision'}, not {head}: "
            "run `gatehouse db upgrade` (make run does it for you)."
        )
    engine = create_engine_for(settings.database_url)
    return Gatehouse(settings, policy, engine, SqlUnitOfWorkFactory(engine))


def start(gatehouse: Gatehouse) -> None:
    """Serve Slack in the configured mode."""
    raise NotReady(
        "Gatehouse is configured (policy loaded, database at head), but this version has no "
        "Slack listeners yet, so there is nothing to serve."
    )
