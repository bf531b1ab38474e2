"""A Gatehouse on fakes with a clock the test moves: for sweeps, timers and recovery."""

import pytest

from bot.slack.workflows import Deps
from tests.unit.example_policy import example_policy
from tests.unit.fakes import FakeBroker, FakeChat, MemoryStore
from tests.unit.slack.scene import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(clock: Clock) -> Deps:
    return Deps(
        uow=MemoryStore(),
        policy=example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=clock,
    )
