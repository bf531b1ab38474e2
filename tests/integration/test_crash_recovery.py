"""The bot killed (SIGKILL) at each step boundary of issue, revoke and close, then restarted:
nothing orphaned in Vault, nothing stuck, no audit event lost, the chain verifies, and what
people see in Slack ends in the right state.

One `gatehouse run` process at a time on PostgreSQL, against the emulators; the step is named
in the crash file the bot reads (bot/services/crashpoints.py).
"""

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.access import RequestState
from bot.services.recovery import UNDELIVERED
from tests.emulators.slack.state import Channel
from tests.fleet import Fleet, Replica, eventually, running_fleet

pytestmark = pytest.mark.postgres
STEPS = ("intent_recorded", "vault_called", "result_recorded", "slack_posted")
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fleet(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("crash")
    with running_fleet(postgres_url, folder, GATEHOUSE_SWEEP_INTERVAL="1") as fleet:
        fleet.start()
        yield fleet


def bot(fleet: Fleet) -> Replica:
    return fleet.replicas[-1]


def crash_and_restart(fleet: Fleet, point: str, *, ended: Any) -> None:
    """Wait for the bot to die at `point`, start another, wait until it finished the work."""
    assert bot(fleet).died_by_sigkill(), f"the bot did not die at {point}"
    assert not fleet.crash_file.exists()
    fleet.start()
    eventually(lambda: ended() and fleet.settled(), f"recovery after {point}")


def everything_consistent(fleet: Fleet) -> None:
    assert eventually(lambda: not fleet.orphans(), f"no orphan in Vault: {fleet.orphans()}")
    assert fleet.audit_gaps() == []
    assert fleet.audit_verify().endswith("ok"), fleet.audit_verify()


def file_request(fleet: Fleet, channel: Channel, duration: str, marker: str) -> tuple[str, Any]:
    bot(fleet).people.slash_command(
        "/request-access",
        f"inference-logs-ro {duration} {marker}",
        user_id="U0ONCALL2",
        channel_id=channel.id,
    )
    card = fleet.card(channel.id, marker)
    return fleet.request_id(card), card


def approve(fleet: Fleet, channel: Channel, request_id: str, card: Any) -> None:
    result = bot(fleet).people.block_action(
        "U0LEAD1", "gatehouse.approve", request_id, channel_id=channel.id, message_ts=card.ts
    )
    assert result.status == 200


def active_and_told(fleet: Fleet, request_id: str) -> bool:
    with fleet.uow() as tx:
        request = tx.requests.get(request_id)
    return (
        request is not None
        and request.state is RequestState.ACTIVE
        and not request.awaiting_delivery
    )


def shown(fleet: Fleet, channel: Channel, card: Any) -> tuple[str, list[str]]:
    """The card as it reads now, and the replies in its thread."""
    now = fleet.slack.channel(channel.id).find(card.ts)
    assert now is not None
    return str(now.blocks), [m.text for m in fleet.thread(channel.id, card)]


@pytest.mark.parametrize("step", STEPS)
def test_issue(fleet: Fleet, step: str) -> None:
    point = f"issue.{step}"
    channel = fleet.open_incident(bot(fleet), f"issue crash {next(_names)}")
    request_id, card = file_request(fleet, channel, "30m", f"crash-at-{point}")
    fleet.arm_crash(point)
    approve(fleet, channel, request_id, card)
    lost = step == "result_recorded"  # issued, recorded, never delivered: the secret is gone
    expected = RequestState.REVOKED if lost else RequestState.ACTIVE
    crash_and_restart(fleet, point, ended=lambda: fleet.state(request_id) is expected)
    card_text, thread = shown(fleet, channel, card)
    if lost:
        assert fleet.deliveries(request_id) == 0
        assert "ended:" in card_text and "never delivered" in card_text
        assert [t for t in thread if "never delivered" in t] == [thread[-1]]
        with fleet.uow() as tx:
            request = tx.requests.get(request_id)
        assert request is not None and request.end_reason == UNDELIVERED
    else:
        assert fleet.deliveries(request_id) == 2  # once: the ephemeral and the DM
        assert "is active until" in card_text
        assert [t for t in thread if "is ready" in t] == [thread[-1]]
    everything_consistent(fleet)


@pytest.mark.parametrize("step", STEPS)
def test_expiry(fleet: Fleet, step: str) -> None:
    point = f"revoke.{step}"
    channel = fleet.open_incident(bot(fleet), f"expiry crash {next(_names)}")
    request_id, card = file_request(fleet, channel, "2s", f"crash-at-{point}")
    fleet.arm_crash(point)  # only a revocation reaches it: the expiry, at the grant's end
    approve(fleet, channel, request_id, card)
    crash_and_restart(fleet, point, ended=lambda: fleet.state(request_id) is RequestState.EXPIRED)
    card_text, thread = shown(fleet, channel, card)
    assert "ended: it expired at" in card_text
    assert [t for t in thread if "ended: it expired at" in t] == [thread[-1]]
    everything_consistent(fleet)


@pytest.mark.parametrize(
    "point",
    [
        "close.intent_recorded",
        "close.tree_revoked",
        "close.grants_confirmed",
        "close.slack_posted",
    ],
)
def test_close(fleet: Fleet, point: str) -> None:
    channel = fleet.open_incident(bot(fleet), f"close crash {next(_names)}")
    granted, granted_card = file_request(fleet, channel, "30m", f"granted-{point}")
    approve(fleet, channel, granted, granted_card)
    eventually(lambda: active_and_told(fleet, granted), "access delivered")
    pending, pending_card = file_request(fleet, channel, "30m", f"pending-{point}")
    fleet.arm_crash(point)
    bot(fleet).people.slash_command(
        "/incident", "close rolled back", user_id="U0ONCALL1", channel_id=channel.id
    )
    crash_and_restart(fleet, point, ended=lambda: fleet.slack.channel(channel.id).archived)
    assert fleet.state(granted) is RequestState.REVOKED
    assert fleet.state(pending) is RequestState.CANCELLED
    assert "ended: the incident was closed" in shown(fleet, channel, granted_card)[0]
    assert "was cancelled: the incident was closed" in shown(fleet, channel, pending_card)[0]
    summaries = [m for m in fleet.slack.messages(channel.id) if "audit summary" in m.text]
    assert len(summaries) == 1 and summaries[0].ts in fleet.slack.pins(channel.id)
    assert "revoked" in str(summaries[0].blocks)
    calls = [c for c in fleet.slack.calls if c.args.get("channel") == channel.id]
    archived_at = [i for i, c in enumerate(calls) if c.method == "conversations.archive"]
    after = (
        [(c.method, c.args.get("ts")) for c in calls[archived_at[0] + 1 :]] if archived_at else []
    )
    assert archived_at == [len(calls) - 1], after  # archived once, and nothing after it
    everything_consistent(fleet)


@pytest.mark.parametrize("point", ["open.incident_recorded", "open.channel_created"])
def test_open(fleet: Fleet, point: str) -> None:
    """Killed after the incident is recorded (no channel yet) or after Slack made the channel
    but before it was attached: the restarted bot makes the incident's channel (the next name
    when the first was made and lost), pins its card and tells the opener once where it is."""
    title = f"open crash {next(_names)}"
    fleet.arm_crash(point)
    bot(fleet).people.slash_command(
        "/incident", f"open {title}", user_id="U0ONCALL1", channel_id=fleet.general
    )
    assert bot(fleet).died_by_sigkill(), f"the bot did not die at {point}"
    fleet.start()

    def recovered() -> Any:
        """The incident with its card pinned and its opener told (the DM comes last)."""
        with fleet.uow() as tx:
            found = [i for i in tx.incidents.list_open() if i.title == title]
            shown = found and tx.cards.of_incident(found[0].id) is not None
        told = shown and any(found[0].id in m.text for m in fleet.slack.dms("U0ONCALL1"))
        return found[0] if told else None

    incident = eventually(recovered, f"recovery after {point}", timeout=60)
    slug = title.lower().replace(" ", "-")
    made = [c for c in fleet.slack.workspace.channels.values() if slug in c.name]
    lost = point == "open.channel_created"
    assert len(made) == (2 if lost else 1)
    assert incident.channel_name.endswith(f"{slug}-2" if lost else slug)
    with fleet.uow() as tx:
        card_ts = tx.cards.of_incident(incident.id)
    assert card_ts in fleet.slack.pins(incident.channel_id)
    told = [m for m in fleet.slack.dms("U0ONCALL1") if incident.id in m.text]
    assert len(told) == 1 and f"<#{incident.channel_id}>" in told[0].text
    everything_consistent(fleet)
