"""Slack failing for a while: every Web API call answered 429 (with Retry-After) or 500 while a
request is filed and another approved, and again, as long, while the incident is closed.

    .venv/bin/python -m tests.slack_outage --outage-seconds 120 [--status 429|500]
        [--retry-after 1] [--replicas 2]

Replicas (`gatehouse run`, tests/fleet.py) against the Slack and Vault emulators and a fresh
PostgreSQL database. A second incident is opened during the first outage: it is recorded at
once, and its channel is made, its card pinned and its opener told where once Slack answers.
The incident the requests are filed in is opened before, as is one request, so that its card
is there to be approved (nothing can be filed in an incident without its channel). The close
has an outage of its own: closed during the first, the access would end before Slack could
take the credential, and there would be no credential left to hand over. What Slack
shows afterwards is read from the emulator's record: the cards, the thread replies, what each
person was told privately, the close summary; and the database says how many requests each
`/request-access` filed. The integration test runs the same scenario with a short outage.
"""

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain.access import RequestState
from tests.databases import admin_engine, fresh_postgres_database
from tests.emulators.slack.state import Channel
from tests.fleet import Fleet, Replica, card_request_id, eventually, running_fleet

REQUESTER = "U0ONCALL2"
APPROVER = "U0LEAD1"
COMMANDER = "U0ONCALL1"  # opens the incident, so commands its close
BEFORE = "filed-before-the-outage"
DURING = "filed-during-the-outage"
OPENED_DURING = "opened while Slack was down"
SUMMARY = "Its audit summary follows."
ENDED = (RequestState.PENDING, RequestState.APPROVED)


@dataclass
class OutageRun:
    """What one run did, and what Slack and the database showed once it had caught up."""

    status: int
    outage_seconds: float
    channel_id: str = ""
    requests: dict[str, str] = field(default_factory=dict)  # marker -> request id
    rows: Counter[str] = field(default_factory=Counter)  # marker -> request rows filed
    cards: Counter[str] = field(default_factory=Counter)  # request id -> cards posted
    card_shows: dict[str, str] = field(default_factory=dict)  # request id -> its card's end
    card_buttons: dict[str, bool] = field(default_factory=dict)  # request id -> still has some
    replies: dict[str, list[str]] = field(default_factory=dict)  # request id -> thread replies
    deliveries: Counter[str] = field(default_factory=Counter)  # request id -> credentials shown
    states: dict[str, str] = field(default_factory=dict)
    told: Counter[str] = field(default_factory=Counter)  # "who (how): text" -> times
    opened_during: tuple[int, int, int] = (0, 0, 0)  # incidents recorded, channels, pins
    summaries: int = 0
    summary_pinned: bool = False
    archived: bool = False
    refused_calls: int = 0  # Web API calls answered with the outage's status
    # Seconds from Slack's return to everything shown, after each outage (None: not shown).
    caught_up_after: list[float | None] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"two outages, every Web API call answered {self.status} for "
            f"{self.outage_seconds:.0f} s each ({self.refused_calls} calls refused)",
            "caught up after each: "
            + ", ".join(
                "not within the wait" if after is None else f"{after:.1f} s"
                for after in self.caught_up_after
            )
            + " after Slack answered again",
            f"request rows per /request-access: {dict(self.rows)}",
        ]
        for marker, request_id in self.requests.items():
            lines.append(
                f"{marker} {request_id}: {self.states.get(request_id)}; cards posted "
                f"{self.cards[request_id]}; card shows {self.card_shows.get(request_id)!r}"
                f"{' with its buttons' if self.card_buttons.get(request_id) else ''}; "
                f"credential shown {self.deliveries[request_id]}x (ephemeral + DM); "
                f"thread replies {self.replies.get(request_id, [])}"
            )
        lines.append(
            f"/incident open during the first outage: {self.opened_during[0]} incident(s) "
            f"recorded, {self.opened_during[1]} channel(s) made, {self.opened_during[2]} "
            "pin(s) in it"
        )
        lines.append(f"told privately: {dict(self.told)}")
        lines.append(
            f"close summary posted {self.summaries}x, pinned {self.summary_pinned}; "
            f"channel archived {self.archived}"
        )
        lines.append("problems: " + ("; ".join(self.failures) if self.failures else "none"))
        return "\n".join(lines)

    def check(self) -> list[str]:
        """What Slack or the database got wrong: each line one broken promise."""
        found = []
        for marker in (BEFORE, DURING):
            if self.rows[marker] != 1:
                found.append(f"{marker}: {self.rows[marker]} request rows")
        for request_id in self.requests.values():
            if self.cards[request_id] != 1:
                found.append(f"{request_id}: {self.cards[request_id]} cards")
            if self.card_buttons.get(request_id):
                found.append(f"{request_id}: its card still asks for a decision")
            for reply, count in Counter(self.replies.get(request_id, [])).items():
                if count > 1:
                    found.append(f"{request_id}: {reply!r} posted {count}x")
        approved = self.requests.get(BEFORE, "")
        ready = sum("is ready" in reply for reply in self.replies.get(approved, []))
        if ready != 1:
            found.append(f"{approved}: told it is ready {ready}x")
        if self.deliveries[approved] != 2:
            found.append(f"{approved}: its credential shown {self.deliveries[approved]}x, not 2")
        found += [f"told {count}x: {text!r}" for text, count in self.told.items() if count > 1]
        if self.summaries != 1 or not self.summary_pinned:
            found.append(f"close summary posted {self.summaries}x")
        if not self.archived:
            found.append("channel not archived")
        if self.opened_during != (1, 1, 1):
            found.append(f"opened during the outage: {self.opened_during}, not (1, 1, 1)")
        late = [text for text in self.told if text.startswith(f"{COMMANDER} (DM)")]
        if not any("now has its channel" in text for text in late):
            found.append("the opener was not told where the late channel is")
        return found


def _file(fleet: Fleet, replica: Replica, channel: Channel, marker: str) -> None:
    replica.people.slash_command(
        "/request-access",
        f"inference-logs-ro 30m {marker}",
        user_id=REQUESTER,
        channel_id=channel.id,
    )


def _request_id(fleet: Fleet, marker: str) -> str | None:
    with fleet.uow() as tx:
        pending = tx.requests.list_in_state(RequestState.PENDING, 10_000)
        found = [r.id for r in pending if marker in r.reason]
    return found[0] if found else None


def run_outage(
    fleet: Fleet,
    replicas: list[Replica],
    *,
    outage_seconds: float,
    status: int = 429,
    retry_after: int = 1,
    catch_up: float = 120.0,
) -> OutageRun:
    """The scenario, in two outages of `outage_seconds` each; returns what was seen.

    The first covers a request filed and another approved: once Slack is back, the new card
    and the credential must have reached Slack. The second covers the close: once Slack is
    back, the summary is posted and the channel archived. Replicas take turns, so the request,
    the approval and the close each reach a different one when there are several."""
    run = OutageRun(status, outage_seconds)
    channel = fleet.open_incident(replicas[0], f"slack outage {int(time.time())}")
    run.channel_id = channel.id
    since = fleet.posted_so_far(channel.id)
    _file(fleet, replicas[0], channel, BEFORE)
    card = fleet.card(channel.id, BEFORE, since=since)
    run.requests[BEFORE] = fleet.request_id(card)

    def open_file_and_approve() -> None:
        replicas[1 % len(replicas)].people.slash_command(
            "/incident", f"open {OPENED_DURING}", user_id=COMMANDER, channel_id=fleet.general
        )
        _file(fleet, replicas[1 % len(replicas)], channel, DURING)
        run.requests[DURING] = eventually(lambda: _request_id(fleet, DURING), "the request")
        replicas[2 % len(replicas)].people.block_action(
            APPROVER,
            "gatehouse.approve",
            run.requests[BEFORE],
            channel_id=channel.id,
            message_ts=card.ts,
        )

    def close() -> None:
        replicas[0].people.slash_command(
            "/incident",
            "close fixed while Slack was down",
            user_id=COMMANDER,
            channel_id=channel.id,
        )

    def delivered_and_shown() -> bool:
        with fleet.uow() as tx:
            approved = tx.requests.get(run.requests[BEFORE])
            during_card = tx.cards.of_request(run.requests[DURING])
        return (
            approved is not None
            and approved.state is RequestState.ACTIVE
            and not approved.awaiting_delivery
            and during_card is not None
            and any(c.pins for c in _channels_opened_during(fleet))
            and fleet.settled()
        )

    run.caught_up_after = []
    for what, caught_up in (
        (open_file_and_approve, delivered_and_shown),
        (close, _closed(fleet, channel.id)),
    ):
        after = _outage(fleet, run, what, caught_up, retry_after=retry_after, catch_up=catch_up)
        run.caught_up_after.append(after)
    time.sleep(3)  # anything posted late, twice, would show by now
    _tally(fleet, run)
    run.failures += run.check()
    return run


def _outage(
    fleet: Fleet,
    run: OutageRun,
    during: Callable[[], None],
    caught_up: Callable[[], bool],
    *,
    retry_after: int,
    catch_up: float,
) -> float | None:
    """Slack failing for the run's length while `during` runs; then the seconds from its
    return until `caught_up` (None: not within `catch_up`)."""
    slack = fleet.slack
    slack.start_outage(run.status, retry_after=retry_after, seconds=run.outage_seconds)
    started = time.monotonic()
    during()
    if not slack.in_outage:
        run.failures.append("the outage ended before its actions were sent: make it longer")
    time.sleep(max(0.0, started + run.outage_seconds - time.monotonic()))
    slack.end_outage()
    back = time.monotonic()
    try:
        eventually(
            caught_up,
            f"caught up after the outage {len(run.caught_up_after) + 1}",
            timeout=catch_up,
        )
    except AssertionError as error:
        run.failures.append(str(error))
        return None
    return time.monotonic() - back


def _closed(fleet: Fleet, channel_id: str) -> Callable[[], bool]:
    def closed() -> bool:
        return fleet.slack.channel(channel_id).archived and fleet.settled()

    return closed


def _tally(fleet: Fleet, run: OutageRun) -> None:
    slack = fleet.slack
    messages = slack.messages(run.channel_id)
    tops = [m for m in messages if m.thread_ts in (None, m.ts)]
    with fleet.uow() as tx:
        incident = tx.incidents.get_by_channel(run.channel_id)
        assert incident is not None
        filed = tx.requests.list_for_incident(incident.id)
    for marker in (BEFORE, DURING):
        run.rows[marker] = sum(marker in request.reason for request in filed)
    for request in filed:
        run.states[request.id] = request.state.value
    for request_id in run.requests.values():
        cards = [m for m in tops if card_request_id(m.text) == request_id]
        run.cards[request_id] = len(cards)
        if cards:
            shown = _section_texts(cards[-1].blocks)
            run.card_shows[request_id] = shown[-1] if shown else ""
            run.card_buttons[request_id] = any(
                block.get("type") == "actions" for block in cards[-1].blocks or []
            )
            run.replies[request_id] = [m.text for m in slack.thread(run.channel_id, cards[-1].ts)]
        run.deliveries[request_id] = fleet.deliveries(request_id)
    people = (REQUESTER, APPROVER, COMMANDER)
    for user in people:
        # Ephemerals include what was posted to response_urls.
        run.told.update(f"{user} (ephemeral): {e.text}" for e in slack.ephemerals(user))
        run.told.update(f"{user} (DM): {m.text}" for m in slack.dms(user))
    summaries = [m for m in tops if SUMMARY in m.text]
    run.summaries = len(summaries)
    pins = slack.pins(run.channel_id)
    run.summary_pinned = bool(summaries) and summaries[0].ts in pins
    run.archived = slack.channel(run.channel_id).archived
    run.refused_calls = sum(c.status == run.status for c in slack.calls)
    with fleet.uow() as tx:
        recorded = [i for i in tx.incidents.list_open() if i.title == OPENED_DURING]
    made = _channels_opened_during(fleet)
    run.opened_during = (len(recorded), len(made), sum(len(c.pins) for c in made))


def _channels_opened_during(fleet: Fleet) -> list[Channel]:
    slug = OPENED_DURING.lower().replace(" ", "-")
    with fleet.slack.workspace.lock:
        return [c for c in fleet.slack.workspace.channels.values() if c.name.endswith(slug)]


def _section_texts(blocks: Any) -> list[str]:
    found = []
    for block in blocks or []:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            found.append(text["text"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outage-seconds", type=float, default=120.0)
    parser.add_argument("--status", type=int, choices=[429, 500, 502, 503, 504], default=429)
    parser.add_argument("--retry-after", type=int, default=1, help="seconds, with 429")
    parser.add_argument("--replicas", type=int, default=2)
    arguments = parser.parse_args()
    admin = admin_engine()
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            fresh_postgres_database(admin) as url,
            running_fleet(url, Path(folder), GATEHOUSE_SWEEP_INTERVAL="2") as fleet,
        ):
            replicas = fleet.start(arguments.replicas)
            run = run_outage(
                fleet,
                replicas,
                outage_seconds=arguments.outage_seconds,
                status=arguments.status,
                retry_after=arguments.retry_after,
            )
            print(run.report())
    finally:
        admin.dispose()


if __name__ == "__main__":
    main()
