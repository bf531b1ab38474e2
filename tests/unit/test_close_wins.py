"""A close that commits while Vault is still issuing wins: the late credential is revoked at
once, never handed out, and the close summary reports it (instead of an unissued request)."""

import threading
import time
from datetime import datetime

from bot.domain import events
from bot.domain.access import CLOSE_REASON, RequestState
from bot.domain.audit import Action
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import IncidentStatus
from bot.domain.ports import IssuedCredential
from bot.domain.rules import ResourceRule
from bot.services import incidents
from bot.services.issuing import StoredIncidentTokens
from tests.unit.fakes import FakeBroker
from tests.unit.test_services import World


class CloseWhileIssuing(FakeBroker):
    """Vault that answers only once a close, sent from another thread, has committed."""

    def __init__(self, world: World) -> None:
        super().__init__(ledger=StoredIncidentTokens(world.store, world.clock))
        self.world = world
        self.closed: list[incidents.CloseResult] = []
        self.closer: threading.Thread | None = None

    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        self.closer = threading.Thread(target=lambda: self.closed.append(self.world.close()))
        self.closer.start()
        deadline = time.monotonic() + 10
        while self._incident_open() and time.monotonic() < deadline:
            time.sleep(0.005)
        return super().issue(grant=grant, resource=resource, until=until, now=now)

    def _incident_open(self) -> bool:
        status = self.world.store.state.incidents[self.world.incident.id].status
        return status is IncidentStatus.OPEN


def test_a_credential_issued_after_the_close_is_revoked_at_once_and_reported() -> None:
    world = World()
    broker = CloseWhileIssuing(world)
    world.broker = broker
    request_id = world.request()
    world.decide(request_id, "U0LEAD1")

    issued = world.issue(request_id)
    assert broker.closer is not None
    broker.closer.join(timeout=10)

    assert issued.credential is None  # nothing to deliver
    assert issued.grant is not None and issued.grant.status is GrantStatus.REVOKED
    assert broker.revoked == [issued.grant.id] and broker.live == {}
    request = world.store.state.requests[request_id]
    assert request.state is RequestState.CANCELLED
    [closed] = broker.closed
    assert [g.id for g in closed.revoked] == [issued.grant.id] and closed.unconfirmed == []
    [line] = closed.summary.issued_after_close
    assert line.request_id == request_id and line.revocation_confirmed_at is not None
    assert closed.summary.ended_by_close("cancelled") == []
    assert closed.summary.close_report() == (
        "Closing revoked 1 credential Vault issued after the close (never delivered); Vault "
        "confirmed every revocation."
    )
    assert "revoked at once, never delivered" in closed.summary.to_markdown()
    # The close came first, then Vault's answer, its revocation, and the incident's token.
    assert world.actions()[-7:] == [
        Action.REQUEST_CANCELLED.value,
        Action.GRANT_REVOCATION_REQUESTED.value,
        Action.INCIDENT_CLOSED.value,
        Action.VAULT_TOKEN_CREATED.value,
        Action.GRANT_ISSUED.value,
        Action.GRANT_REVOKED.value,
        Action.VAULT_TOKENS_REVOKED.value,
    ]
    # Why it ended is the request's, and the revocation's event says it too.
    assert request.end_reason == CLOSE_REASON
    [asked] = [
        e.typed
        for e in world.store.state.events
        if e.entry.action == Action.GRANT_REVOCATION_REQUESTED.value
    ]
    assert isinstance(asked, events.RevocationRequested) and asked.reason == CLOSE_REASON
