"""The workflows' dependencies on fakes, shared by the Slack-side tests."""

from datetime import UTC, datetime

import pytest

from bot.slack.workflows import Deps
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, FakeChat, FakeDirectory, FakeOnCall, MemoryStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def deps() -> Deps:
    return Deps(
        uow=MemoryStore(),
        policy=example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=lambda: T0,
        vault_addr="https://vault.example:8200",
        directory=FakeDirectory(),
        oncall=FakeOnCall(),  # PagerDuty is configured; nobody is on call
    )
