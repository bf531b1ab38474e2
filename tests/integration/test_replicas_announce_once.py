"""Three replicas on one PostgreSQL, each running the sweep, the expiry timers and the notifier:
requests left to time out, approvers reminded, grants left to expire. Slack's record says each
reminder, time-out and expiry was posted once, in its card's thread, and each card shows how
its request ended.
"""

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.domain.access import RequestState
from tests.databases import many_connections
from tests.emulators.slack.state import Channel
from tests.fleet import Fleet, Replica, card_request_id, eventually, running_fleet
from tests.harness import EXAMPLE_POLICY

pytestmark = [pytest.mark.postgres, many_connections(lane=2)]
LEFT_PENDING = 4  # reminded, then timed out
LEFT_TO_EXPIRE = 4  # approved at once, expired
REMINDER_AFTER = "5s"
REQUEST_TIMEOUT = "12s"
GRANT_SECONDS = 6


def quick_policy(folder: Path) -> Path:
    """The example policy with reminders and time-outs within seconds."""
    text = EXAMPLE_POLICY.read_text()
    for old, new in (
        ("request_timeout: 30m", f"request_timeout: {REQUEST_TIMEOUT}"),
        ("reminder_after: 10m", f"reminder_after: {REMINDER_AFTER}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    policy = folder / "policy.yaml"
    policy.write_text(text)
    return policy


def file_request(fleet: Fleet, replica: Replica, channel: Channel, marker: str) -> Any:
    """A request for inference-logs-ro through `replica`; returns its card."""
    since = fleet.posted_so_far(channel.id)
    replica.people.slash_command(
        "/request-access",
        f"inference-logs-ro {GRANT_SECONDS}s {marker}",
        user_id="U0ONCALL2",
        channel_id=channel.id,
    )
    return fleet.card(channel.id, marker, since=since)


def replies(fleet: Fleet, channel: Channel, card: Any, needle: str) -> int:
    return sum(needle in message.text for message in fleet.thread(channel.id, card))


def test_time_outs_expiries_and_reminders_are_announced_once(
    postgres_url: str, tmp_path: Path
) -> None:
    policy = quick_policy(tmp_path)
    with running_fleet(
        postgres_url, tmp_path, GATEHOUSE_POLICY=str(policy), GATEHOUSE_SWEEP_INTERVAL="1"
    ) as fleet:
        replicas = fleet.start(3)
        channel = fleet.open_incident(replicas[0], "announce once")
        pending = [
            file_request(fleet, replicas[n % 3], channel, f"left-pending-{n}")
            for n in range(LEFT_PENDING)
        ]
        approved = []
        for n in range(LEFT_TO_EXPIRE):
            card = file_request(fleet, replicas[n % 3], channel, f"left-to-expire-{n}")
            replicas[(n + 1) % 3].people.block_action(
                "U0LEAD1",
                "gatehouse.approve",
                fleet.request_id(card),
                channel_id=channel.id,
                message_ts=card.ts,
            )
            approved.append(card)
        ids = {fleet.request_id(card): card for card in pending + approved}
        ended = {RequestState.TIMED_OUT, RequestState.EXPIRED}
        eventually(
            lambda: all(fleet.state(request_id) in ended for request_id in ids),
            "every request timed out or expired",
        )
        eventually(fleet.settled, "every outcome shown")

        for card in pending:
            request_id = fleet.request_id(card)
            assert fleet.state(request_id) is RequestState.TIMED_OUT
            assert replies(fleet, channel, card, "still waiting") == 1, request_id
            assert replies(fleet, channel, card, "timed out: nobody decided") == 1, request_id
        for card in approved:
            request_id = fleet.request_id(card)
            assert fleet.state(request_id) is RequestState.EXPIRED
            assert replies(fleet, channel, card, "ended: it expired at") == 1, request_id
            assert replies(fleet, channel, card, "is ready") == 1, request_id
            assert replies(fleet, channel, card, "still waiting") <= 1, request_id
            assert fleet.deliveries(request_id) == 2  # the ephemeral and the DM, once each

        # The cards as they stand: one per request, redrawn to its end, without buttons.
        tops = [m for m in fleet.slack.messages(channel.id) if m.thread_ts in (None, m.ts)]
        final = {m.ts: m for m in tops}
        posted = Counter(card_request_id(m.text) for m in tops if card_request_id(m.text) in ids)
        assert all(count == 1 for count in posted.values()) and set(posted) == set(ids)
        for request_id, card in ids.items():
            shown = str(final[card.ts].blocks)
            expected = "timed out: nobody decided" if card in pending else "ended: it expired at"
            assert expected in shown, request_id
            assert "gatehouse.approve" not in shown, request_id
        assert fleet.audit_verify().endswith("ok")
