"""Helpers for tests on the `deps` fixture: the fakes inside it, an incident with a request."""

from datetime import UTC, datetime, timedelta

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.incident import Severity
from bot.services import access
from tests.unit.fakes import FakeBroker, FakeChat

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def broker(deps: Deps) -> FakeBroker:
    assert isinstance(deps.broker, FakeBroker)
    return deps.broker


def chat(deps: Deps) -> FakeChat:
    assert isinstance(deps.chat, FakeChat)
    return deps.chat


def filed(deps: Deps, duration: str = "30m") -> tuple[str, str]:
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    request_id = workflows.file_request(
        deps,
        channel_id=incident.channel_id,
        user="U0ONCALL2",
        resource="inference-logs-ro",
        duration=duration,
        reason="drift",
    )
    return incident.channel_id, request_id


def approve(deps: Deps, request_id: str) -> None:
    workflows.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )


def state(deps: Deps, request_id: str) -> RequestState:
    return access.get_request(uow=deps.uow, request_id=request_id).state
