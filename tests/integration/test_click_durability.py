"""An Approve click acknowledged with a 200 survives the bot being killed 0-50 ms later.

Twenty trials spread over 0-50 ms on real `gatehouse run` processes against PostgreSQL and the
emulators (a restart takes a fraction of a second; the wait for the sweep to issue dominates);
`tests/bench/click_durability_bench.py` runs any number and prints how many were kept.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.click_durability import play, spread, wait_until_finished
from tests.fleet import Fleet, running_fleet

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def fleet(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("clicks")
    with running_fleet(postgres_url, folder, GATEHOUSE_SWEEP_INTERVAL="1") as fleet:
        fleet.start()
        yield fleet


def test_an_acknowledged_approve_survives_a_kill_right_after_its_200(fleet: Fleet) -> None:
    channel = fleet.open_incident(fleet.replicas[-1], "click durability")
    trials = play(fleet, channel, spread(20))
    lost = [trial for trial in trials if not trial.recorded]
    assert lost == [], f"acknowledged and lost: {lost}"
    wait_until_finished(fleet, channel, trials)
    delivered = {t.request_id: fleet.deliveries(t.request_id) for t in trials}
    assert all(count <= 2 for count in delivered.values()), delivered  # never twice


def test_a_request_acknowledged_and_killed_gets_its_card_after_restart(fleet: Fleet) -> None:
    """Filed before its 200; the card, if the kill came first, is posted by recovery."""
    if not fleet.replicas[-1].alive:
        fleet.start()
    channel = fleet.open_incident(fleet.replicas[-1], "filing durability")
    bot = fleet.replicas[-1]
    answered = bot.people.slash_command(
        "/request-access",
        "inference-logs-ro 30m filed-then-killed",
        user_id="U0ONCALL2",
        channel_id=channel.id,
    )
    bot.kill()
    assert answered.status == 200
    with fleet.uow() as tx:  # read before any bot runs again
        incident = tx.incidents.get_by_channel(channel.id)
        assert incident is not None
        (filed,) = tx.requests.list_for_incident(incident.id)
    assert filed.reason == "filed-then-killed"
    fleet.start()
    card = fleet.card(channel.id, "filed-then-killed")
    assert fleet.request_id(card) == filed.id
    cards = [m for m in fleet.slack.messages(channel.id) if "filed-then-killed" in str(m.blocks)]
    assert len(cards) == 1
