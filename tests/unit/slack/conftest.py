"""The workflows' dependencies on fakes, with a clock the test moves: for every Slack-side test."""

import pytest

from bot.app.deps import Deps
from bot.slack.views import slack_deps
from tests.unit.example_policy import oncall_example_policy
from tests.unit.fakes import FakeBroker, FakeChat, FakeDirectory, FakeOnCall, MemoryStore
from tests.unit.slack.scene import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(clock: Clock) -> Deps:
    return slack_deps(
        uow=MemoryStore(),
        policy=oncall_example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=clock,
        vault_addr="https://vault.example:8200",
        directory=FakeDirectory(),
        oncall=FakeOnCall(),  # PagerDuty is configured; nobody is on call
        sleep=lambda seconds: clock.advance(seconds),  # a worker's pause passes at once
    )
