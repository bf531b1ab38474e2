"""Closing an incident with many live grants: the token tree cut at once, each grant confirmed.

    .venv/bin/python -m tests.bench.close_bench [--grants 1000] [--vault-rtt-ms 20]

The real bot in HTTP mode (tests/harness.py) in a process of its own, on a throwaway PostgreSQL
database, against the Slack and Vault emulators in this process (so the two sides do not share
an interpreter). Two incidents get `--grants` active grants each, issued for real through the
Vault broker (through the services, Vault answering at once: only the close is measured).
Then Vault answers every request `--vault-rtt-ms` late, as a network would, and:

- the first incident is closed as people close it: `/incident close`, signed, over HTTP;
- the second is closed the way access ends one grant at a time: the close committed, then each
  grant revoked and confirmed on its own (`issuing.revoke_grant`), then the incident's tokens.

For each: the time from the close to "all unusable" (the Vault emulator's record of the moment
the last grant token or lease was revoked; for the first also after its commit, the incident
seen closed in the database), to "all confirmed" (every grant REVOKED in the
database), for the first also to the summary posted in Slack, and the Vault requests by path.
Prints figures only, beside the floor: one request's round trip.
"""

import argparse
import contextlib
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import create_engine, func, select

from bot.domain.access import Verdict
from bot.domain.grant import GrantStatus
from bot.log_setup import configure_logging
from bot.services import access, incidents, issuing
from bot.store.tables import grants
from bot.store.tables import incidents as incidents_table
from tests.databases import admin_engine, fresh_postgres_database
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.vault import VaultEmulator, running_vault
from tests.fleet import NOWHERE
from tests.harness import RunningBot, bot_settings, running_gatehouse
from tests.tools.vault_setup import run_setup_script
from tests.waiting import eventually

COMMANDER, REQUESTER, APPROVER = "U0ONCALL1", "U0ONCALL2", "U0LEAD1"
PEOPLE = {COMMANDER: "ada", REQUESTER: "grace", APPROVER: "linus"}
SEEDING_THREADS = 8
POLL_SECONDS = 0.01
FLOOR_REQUESTS = 1  # the incident's one token, revoked by accessor


@dataclass(frozen=True)
class Figures:
    how: str
    grants: int
    committed: float | None  # seconds from the close to its commit (incident closed)
    unusable: float  # seconds from the close to the last grant token or lease revoked
    confirmed: float  # seconds from the close to every grant REVOKED
    summary: float | None  # seconds from the close to the summary in Slack
    vault: Counter[str]  # requests by path during the close


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- the bot's process ---------------------------------------------------------------------------


def bot_side(settings_values: dict[str, Any], count: int, parent: Connection) -> None:
    """Serve the bot; seed both incidents when told their channels; run the one-at-a-time
    close when told; answer with what the parent cannot see from outside."""
    configure_logging(level="ERROR")
    with running_gatehouse(bot_settings(**settings_values)) as bot:
        parent.send(bot.events_url)
        channels: list[str] = parent.recv()
        seeded = [_seed(bot, channel, count) for channel in channels]
        assert bot.deps.notify_through(), "the notifier did not catch up with the seeding"
        parent.send(seeded)
        incident_id, _ = seeded[1]
        parent.recv()  # the parent has started its clock
        parent.send(_close_one_at_a_time(bot, incident_id))
        parent.recv()


def _seed(bot: RunningBot, channel: str, count: int) -> tuple[str, list[str]]:
    """`count` active grants in the incident of `channel`: its id and the grants' accessors."""
    gatehouse = bot.gatehouse
    incident = incidents.find_incident_for_channel(uow=gatehouse.uow, channel_id=channel)
    assert incident is not None

    def one(number: int) -> str:
        request = access.request_access(
            uow=gatehouse.uow,
            policy=gatehouse.policy,
            channel_id=channel,
            requester_id=REQUESTER,
            resource="inference-logs-ro",
            duration="1h",
            reason=f"close bench {number}",
            now=utc_now(),
        )
        access.decide_request(
            uow=gatehouse.uow,
            request_id=request.id,
            approver_id=APPROVER,
            verdict=Verdict.APPROVE,
            reason=None,
            now=utc_now(),
        )
        issued = issuing.issue_access(
            uow=gatehouse.uow,
            policy=gatehouse.policy,
            broker=gatehouse.broker,
            request_id=request.id,
            clock=utc_now,
        )
        assert issued.grant is not None and issued.grant.token_accessor, issued.error
        return issued.grant.token_accessor

    with ThreadPoolExecutor(max_workers=SEEDING_THREADS) as pool:
        return incident.id, list(pool.map(one, range(count)))


def _close_one_at_a_time(bot: RunningBot, incident_id: str) -> float:
    """The close committed, then each grant revoked and confirmed on its own, then the
    incident's tokens: when the last grant was recorded REVOKED (epoch seconds)."""
    gatehouse = bot.gatehouse
    with (
        mock.patch.object(incidents, "complete_close", side_effect=_CommittedOnly),
        contextlib.suppress(_CommittedOnly),
    ):
        incidents.close_incident(
            uow=gatehouse.uow,
            policy=gatehouse.policy,
            broker=gatehouse.broker,
            incident_id=incident_id,
            closed_by=COMMANDER,
            resolution="bench, one at a time",
            clock=utc_now,
        )
    with gatehouse.uow() as tx:
        revoking = tx.grants.list_for_incident(incident_id, statuses=[GrantStatus.REVOKING])
    for grant in revoking:
        issuing.revoke_grant(
            uow=gatehouse.uow, broker=gatehouse.broker, grant_id=grant.id, clock=utc_now
        )
    confirmed_at = time.time()
    issuing.revoke_incident_tokens(
        uow=gatehouse.uow, broker=gatehouse.broker, incident_id=incident_id, clock=utc_now
    )
    return confirmed_at


class _CommittedOnly(Exception):
    """The close stops once committed: what follows is done here, one grant at a time."""


# -- this process: the emulators, the close over HTTP, the clocks --------------------------------


def _open_incident(slack: SlackEmulator, people: SlackClient, general: str, title: str) -> str:
    before = {c.id for c in slack.workspace.channels.values()}
    opened = people.slash_command(
        "/incident", f"open {title} sev2", user_id=COMMANDER, channel_id=general
    )
    assert opened.status == 200, opened.text

    def channel() -> Any:
        return next(
            (c for c in slack.workspace.channels.values() if c.id not in before and c.pins), None
        )

    made = eventually(channel, f"the channel of {title}")
    made.members.extend([REQUESTER, APPROVER])
    return str(made.id)


def _first_moment(done: Callable[[], bool], timeout: float = 600) -> float:
    """Epoch seconds of the first poll at which `done` holds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("the close did not finish in time")
        time.sleep(POLL_SECONDS)
    return time.time()


def _last_revocation(vault: VaultEmulator, accessors: list[str]) -> float:
    wanted = set(accessors)
    revoked = {r.target: r.at for r in vault.revocations() if r.target in wanted and r.found}
    assert len(revoked) == len(wanted), f"{len(wanted) - len(revoked)} grant tokens live"
    return max(revoked.values())


def measure(count: int, rtt_ms: float, database_url: str, folder: Path) -> list[Figures]:
    with ExitStack() as stack:
        slack = stack.enter_context(running_slack())
        vault = stack.enter_context(running_vault(database_detached=True))
        setup = run_setup_script(vault, NOWHERE, folder)
        for user_id, name in PEOPLE.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        general = slack.add_channel("war-room", members=list(PEOPLE))
        settings = {
            "slack_bot_token": slack.bot_token,
            "slack_signing_secret": slack.signing_secret,
            "slack_api_url": slack.api_url,
            "vault_addr": vault.url,
            "vault_auth": "approle",
            "vault_role_id": setup.role_id,
            "vault_secret_id": setup.secret_id,
            "database_url": database_url,
        }
        context = multiprocessing.get_context("spawn")
        here, there = context.Pipe()
        worker = context.Process(target=bot_side, args=(settings, count, there), daemon=True)
        worker.start()
        stack.callback(worker.join, 30)
        people = SlackClient(slack, here.recv())
        channels = [
            _open_incident(slack, people, general, title) for title in ("tree", "one-by-one")
        ]
        here.send(channels)
        (tree_incident, tree_accessors), (_, sequential_accessors) = here.recv()
        engine = create_engine(database_url)
        stack.callback(engine.dispose)

        def all_revoked(incident_id: str) -> Callable[[], bool]:
            query = select(func.count()).where(
                grants.c.incident_id == incident_id,
                grants.c.status == GrantStatus.REVOKED.value,
            )

            def done() -> bool:
                with engine.connect() as connection:
                    return connection.execute(query).scalar_one() == count

            return done

        def closed_on_record(incident_id: str) -> Callable[[], bool]:
            query = select(incidents_table.c.status).where(incidents_table.c.id == incident_id)

            def done() -> bool:
                with engine.connect() as connection:
                    return bool(connection.execute(query).scalar_one() == "closed")

            return done

        def summary_posted() -> bool:
            return any("audit summary" in m.text for m in slack.messages(channels[0]))

        vault.set_delay(rtt_ms / 1000)
        before, started = vault.requests_by_path(), time.time()
        closed = people.slash_command(
            "/incident", "close bench", user_id=COMMANDER, channel_id=channels[0]
        )
        assert closed.status == 200, closed.text
        committed = _first_moment(closed_on_record(tree_incident))
        confirmed = _first_moment(all_revoked(tree_incident))
        summary = _first_moment(summary_posted)
        tree = Figures(
            "/incident close (the tree)",
            count,
            committed - started,
            _last_revocation(vault, tree_accessors) - started,
            confirmed - started,
            summary - started,
            vault.requests_by_path() - before,
        )

        before, started = vault.requests_by_path(), time.time()
        here.send("close one at a time")
        confirmed = here.recv()
        sequential = Figures(
            "one grant at a time",
            count,
            None,
            _last_revocation(vault, sequential_accessors) - started,
            confirmed - started,
            None,
            vault.requests_by_path() - before,
        )
        here.send("done")
        return [tree, sequential]
    raise AssertionError("unreachable: the ExitStack block returns")


def report(figures: list[Figures], rtt_ms: float) -> None:
    floor = FLOOR_REQUESTS * rtt_ms / 1000
    print(f"{figures[0].grants} live grants, Vault answering {rtt_ms:g} ms late")
    for closed in figures:
        print(f"{closed.how}:")
        if closed.committed is not None:
            print(f"  close committed{closed.committed:7.3f} s")
            after = closed.unusable - closed.committed
            print(f"  all unusable   {after:7.3f} s after the commit   (floor: {floor:.3f} s)")
        print(f"  all unusable   {closed.unusable:7.3f} s   (floor: {floor:.3f} s, one request)")
        print(f"  all confirmed  {closed.confirmed:7.3f} s")
        if closed.summary is not None:
            print(f"  summary posted {closed.summary:7.3f} s")
        by_path = ", ".join(f"{path} {n}" for path, n in sorted(closed.vault.items()))
        print(f"  Vault requests {sum(closed.vault.values()):7d}     ({by_path})")
    tree, sequential = figures
    print(
        f"one at a time / the tree: unusable {sequential.unusable / tree.unusable:.1f}x later, "
        f"confirmed {sequential.confirmed / tree.confirmed:.1f}x later"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=1000)
    parser.add_argument("--vault-rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    configure_logging(level="ERROR")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        admin = admin_engine()
        stack.callback(admin.dispose)
        url = stack.enter_context(fresh_postgres_database(admin))
        report(measure(args.grants, args.vault_rtt_ms, url, folder), args.vault_rtt_ms)


if __name__ == "__main__":
    main()
