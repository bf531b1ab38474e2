"""An Approve click, then the bot killed (SIGKILL) a few milliseconds after Slack got its 200.

Slack never sends a click again, so what the 200 acknowledged must already be in the
database: each trial reads the request straight after the kill, before a new bot starts.
Then a new bot starts, and afterwards every approved request is issued and its card shows it
(the sweep issues an approval nobody issued after its first wait).

Shared by tests/integration/test_click_durability.py and
tests/bench/click_durability_bench.py.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.access import RequestState
from tests.emulators.slack.state import Channel
from tests.fleet import Fleet, eventually

APPROVER = "U0LEAD1"
REQUESTER = "U0ONCALL2"
# Issued and delivered, or (when the kill fell after the credential was issued but before it
# was handed over) ended by recovery because the secret died with the process.
FINAL = (RequestState.ACTIVE, RequestState.REVOKED)


@dataclass(frozen=True)
class Trial:
    delay_ms: float
    request_id: str
    card_ts: str
    status: int  # what the bot answered the click with
    state_after_kill: RequestState  # read before any bot ran again
    approvers_after_kill: tuple[str, ...]

    @property
    def recorded(self) -> bool:
        """The acknowledged click is in the database."""
        return (
            self.status == 200
            and self.state_after_kill is not RequestState.PENDING
            and APPROVER in self.approvers_after_kill
        )


def spread(trials: int, *, longest_ms: float = 50.0) -> list[float]:
    """`trials` kill delays from 0 to `longest_ms`, evenly spaced."""
    if trials == 1:
        return [0.0]
    return [longest_ms * n / (trials - 1) for n in range(trials)]


def play(fleet: Fleet, channel: Channel, delays_ms: Sequence[float]) -> list[Trial]:
    """One trial per delay, each on a bot of its own: file, approve, kill, read, restart."""
    played = []
    for number, delay_ms in enumerate(delays_ms, start=1):
        if not fleet.replicas or not fleet.replicas[-1].alive:
            fleet.start()
        bot = fleet.replicas[-1]
        marker = f"click-kept-{number}-{time.monotonic_ns()}"
        bot.people.slash_command(
            "/request-access",
            f"inference-logs-ro 30m {marker}",
            user_id=REQUESTER,
            channel_id=channel.id,
        )
        card = fleet.card(channel.id, marker)
        request_id = fleet.request_id(card)
        answered = bot.people.block_action(
            APPROVER, "gatehouse.approve", request_id, channel_id=channel.id, message_ts=card.ts
        )
        time.sleep(delay_ms / 1000)
        bot.kill()
        with fleet.uow() as tx:
            request = tx.requests.get(request_id)
        assert request is not None
        played.append(
            Trial(
                delay_ms=delay_ms,
                request_id=request_id,
                card_ts=card.ts,
                status=answered.status,
                state_after_kill=request.state,
                approvers_after_kill=tuple(request.approvers_so_far),
            )
        )
    fleet.start()
    return played


def finished(fleet: Fleet, channel: Channel, trial: Trial) -> bool:
    """Issued (or ended as undelivered) and shown: the card carries no Approve button."""
    if fleet.state(trial.request_id) not in FINAL or not fleet.settled():
        return False
    card = fleet.slack.channel(channel.id).find(trial.card_ts)
    shown = str(card.blocks if card is not None else "")
    return "gatehouse.approve" not in shown and (
        "is active until" in shown or "never delivered" in shown
    )


def wait_until_finished(fleet: Fleet, channel: Channel, trials: Sequence[Trial]) -> None:
    """Every trial's request issued and its card updated, by the bot running now."""
    eventually(
        lambda: all(finished(fleet, channel, trial) for trial in trials),
        "every approved request issued and shown after the restart",
        timeout=60,
    )
