"""A replica killed after recording a revocation and before asking Vault: another replica's
stream follower (the `vault-effects` cursor, on its 2 s timer) revokes the grant, long before
any sweep would retry it, and the notifier tells it once.

Two `gatehouse run` processes on one PostgreSQL (claims across processes need it), the sweep
an hour apart: its only run in each replica is the one at start, before the revocation.
"""

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.access import RequestState
from bot.domain.grant import GrantStatus
from bot.slack import ids
from tests.databases import many_connections
from tests.fleet import Fleet, Replica, eventually, running_fleet

pytestmark = [pytest.mark.postgres, many_connections(lane=1)]
REQUESTER, APPROVER = "U0ONCALL2", "U0LEAD1"
REQUEST_ID = re.compile(r"R-[A-Z2-7]{8}")


def active_request(fleet: Fleet, replica: Replica, channel: str) -> tuple[str, Any]:
    """A request filed and approved through `replica`, issued, delivered and shown."""
    filed = replica.people.slash_command(
        "/request-access", "inference-logs-ro 30m take-over", user_id=REQUESTER, channel_id=channel
    )
    assert filed.status == 200
    card = fleet.card(channel, "take-over")
    found = REQUEST_ID.search(card.text)
    assert found is not None, card.text
    request_id = found.group(0)
    clicked = replica.people.block_action(
        APPROVER, ids.APPROVE, request_id, channel_id=channel, message_ts=card.ts
    )
    assert clicked.status == 200
    eventually(
        lambda: fleet.state(request_id) is RequestState.ACTIVE and fleet.settled(),
        "access delivered and told",
    )
    return request_id, card


def grant_status(fleet: Fleet, request_id: str) -> GrantStatus:
    with fleet.uow() as tx:
        grant = tx.grants.get_for_request(request_id)
    assert grant is not None
    return grant.status


def test_a_revocation_a_killed_replica_recorded_is_revoked_by_another(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_fleet(postgres_url, tmp_path, GATEHOUSE_SWEEP_INTERVAL="3600") as fleet:
        first, second = fleet.start(2)
        channel = fleet.open_incident(first, "take over a revocation").id
        request_id, card = active_request(fleet, first, channel)
        assert fleet.orphans() == []
        fleet.arm_crash("revoke.recorded")
        try:
            answer = first.people.slash_command(
                "/access", f"revoke {request_id}", user_id=REQUESTER, channel_id=channel
            )
            assert answer.status == 200  # the ack: recorded before the answer
        except httpx.TransportError:
            pass  # it died before the answer was written
        assert first.died_by_sigkill(), "the replica did not die at revoke.recorded"
        assert fleet.state(request_id) is RequestState.REVOKED
        eventually(
            lambda: grant_status(fleet, request_id) is GrantStatus.REVOKED,
            "the grant revoked by the other replica",
            timeout=20,
        )
        assert second.alive
        assert fleet.orphans() == []  # Vault holds nothing of it any more
        told = eventually(
            lambda: [
                m.text
                for m in fleet.thread(channel, card)
                if "ended:" in m.text and "revoked it" in m.text
            ],
            "the revocation told",
        )
        assert len(told) == 1
