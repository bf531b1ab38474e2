"""What one Approve click costs: database transactions, claims, Vault requests, Slack calls.

    .venv/bin/python -m tests.bench.transactions_bench [--clicks 5] [--database postgres] [--sites]

The real bot in HTTP mode, served in this process (tests/harness.py) against the Slack and
Vault emulators, on SQLite or on a throwaway PostgreSQL database it creates and drops. Each
click approves a 1-of-1 request (inference-logs-ro) over signed HTTP and is followed through
the credential's delivery (the requester's ephemeral and DM, the card, the thread reply) until
the bot is quiet. Counted from the click to that quiet moment:

- transactions: `begin` events on the engine the bot builds (`Gatehouse.engine`), with its
  commits and rollbacks, and with `--sites` where each began; on PostgreSQL, separately, those
  on the claims' own engine and the statements sent there (a claim is advisory locks on an
  autocommit connection of that engine);
- claims: claims held (`LocalClaims.hold` yielding a held claim), by kind;
- Vault requests by path, as the Vault emulator recorded them;
- Slack Web API calls by method, as the Slack emulator recorded them.

Prints one block per click. The scheduler is not started, so nothing but the click runs. The
first click also pays for what happens once: the AppRole login and the incident's own token.
"""

import argparse
import json
import re
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import Connection, Engine, event

from bot.log_setup import configure_logging
from bot.store.claims import Claim, LocalClaims
from tests.databases import bench_database
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.vault import VaultEmulator, running_vault
from tests.harness import bot_settings, running_gatehouse
from tests.tools.vault_setup import run_setup_script
from tests.waiting import eventually

NOWHERE = "postgresql://{{username}}:{{password}}@db.invalid:5432/ml"
COMMANDER, REQUESTER, APPROVER = "U0ONCALL1", "U0ONCALL2", "U0LEAD1"
PEOPLE = {COMMANDER: "ada", REQUESTER: "grace", APPROVER: "linus"}
TRANSACTIONS_AIM = 4
VAULT_FLOOR = 2  # the grant's token, and the credential issued under it
QUIET_SECONDS = 0.5  # nothing counted for this long: the click's work is done
REQUEST_ID = re.compile(r"R-[A-Z2-7]{8}")
REPO = Path(__file__).resolve().parents[2]
BOT = REPO / "bot"
STORE = BOT / "store"


@dataclass(frozen=True)
class ClickCost:
    """What one Approve click made the bot do, through the credential's delivery."""

    transactions: int
    commits: int
    rollbacks: int
    claim_transactions: int  # on the claims' engine (PostgreSQL); 0 on SQLite
    claim_statements: int  # statements sent on the claims' engine: locks, checks, unlocks
    transaction_sites: Counter[str]  # where each transaction began: the caller of the store
    claims: Counter[str]  # by kind, the key's prefix: issue, request…
    vault_requests: Counter[str]  # by path
    slack_calls: Counter[str]  # by method

    @property
    def claims_held(self) -> int:
        return sum(self.claims.values())

    @property
    def vault_total(self) -> int:
        return sum(self.vault_requests.values())


class _Tally:
    """Counts transactions per engine and claims held, from every thread of the bot."""

    def __init__(self, bot_engine: Engine) -> None:
        self._bot_engine = bot_engine
        self._lock = threading.Lock()
        self.bot: Counter[str] = Counter()
        self.claims_engine: Counter[str] = Counter()
        self.claims: Counter[str] = Counter()
        self.sites: Counter[str] = Counter()

    def transaction_event(self, name: str) -> Callable[[Connection], None]:
        def count(connection: Connection) -> None:
            engine = connection.engine
            if engine is self._bot_engine:
                counts = self.bot
            elif engine.url == self._bot_engine.url:
                counts = self.claims_engine  # the only other engine on the bot's database
            else:
                return
            site = _site() if counts is self.bot and name == "begin" else None
            with self._lock:
                counts[name] += 1
                if site is not None:
                    self.sites[site] += 1

        return count

    def statement(self, connection: Connection, *_: object) -> None:
        engine = connection.engine
        if engine is not self._bot_engine and engine.url == self._bot_engine.url:
            with self._lock:
                self.claims_engine["statement"] += 1

    def claim_held(self, key: str) -> None:
        with self._lock:
            self.claims[key.partition(":")[0]] += 1

    def snapshot(self) -> tuple[Counter[str], Counter[str], Counter[str], Counter[str]]:
        with self._lock:
            return (
                Counter(self.bot),
                Counter(self.claims_engine),
                Counter(self.claims),
                Counter(self.sites),
            )


def _site() -> str:
    """Who began this transaction: the two innermost frames of the bot outside the store (or
    inside it, for work the store is called for directly, like the edge's replay check)."""
    stack = traceback.extract_stack()
    in_bot = [frame for frame in stack if Path(frame.filename).is_relative_to(BOT)]
    frames = [f for f in in_bot if not Path(f.filename).is_relative_to(STORE)] or in_bot
    return (
        " < ".join(
            f"{Path(frame.filename).relative_to(REPO)}:{frame.lineno} {frame.name}"
            for frame in reversed(frames[-2:])
        )
        or "outside the bot"
    )


@contextmanager
def _counting(bot_engine: Engine) -> Iterator[_Tally]:
    """Count transactions on every engine of the bot's database, and claims held."""
    tally = _Tally(bot_engine)
    listeners = [(name, tally.transaction_event(name)) for name in ("begin", "commit", "rollback")]
    original_hold = LocalClaims.hold

    @contextmanager
    def counted_hold(claims: LocalClaims, key: str, *, wait: bool = False) -> Iterator[Claim]:
        with original_hold(claims, key, wait=wait) as claim:
            if claim:
                tally.claim_held(key)
            yield claim

    for name, listener in listeners:
        event.listen(Engine, name, listener)
    event.listen(Engine, "before_cursor_execute", tally.statement)
    try:
        with mock.patch.object(LocalClaims, "hold", counted_hold):
            yield tally
    finally:
        event.remove(Engine, "before_cursor_execute", tally.statement)
        for name, listener in listeners:
            event.remove(Engine, name, listener)


def _activity(tally: _Tally, slack: SlackEmulator, vault: VaultEmulator) -> tuple[int, ...]:
    bot, claims_engine, claims, _ = tally.snapshot()
    return (
        len(slack.calls),
        len(vault.calls),
        sum(bot.values()),
        sum(claims_engine.values()),
        sum(claims.values()),
    )


def _wait_quiet(tally: _Tally, slack: SlackEmulator, vault: VaultEmulator) -> None:
    """Return once nothing was counted for QUIET_SECONDS (at most 30 s)."""
    deadline = time.monotonic() + 30
    seen, since = _activity(tally, slack, vault), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS:
        if time.monotonic() > deadline:
            raise AssertionError("the bot did not become quiet within 30 s")
        time.sleep(0.05)
        now = _activity(tally, slack, vault)
        if now != seen:
            seen, since = now, time.monotonic()


def _open_incident(slack: SlackEmulator, people: SlackClient, general: str) -> str:
    opened = people.slash_command(
        "/incident", "open bench sev3", user_id=COMMANDER, channel_id=general
    )
    assert opened.status == 200, opened.text

    def incident_channel() -> Any:
        return next(
            (c for c in slack.workspace.channels.values() if c.name.startswith("inc-") and c.pins),
            None,
        )

    channel = eventually(incident_channel, "the incident channel")
    channel.members.extend([REQUESTER, APPROVER])
    return str(channel.id)


def _file_request(slack: SlackEmulator, people: SlackClient, channel: str, number: int) -> Any:
    marker = f"bench-click-{number}"
    filed = people.slash_command(
        "/request-access",
        f"inference-logs-ro 30m {marker}",
        user_id=REQUESTER,
        channel_id=channel,
    )
    assert filed.status == 200, filed.text

    def card() -> Any:
        return next(
            (
                m
                for m in slack.messages(channel)
                if marker in json.dumps(m.blocks or [])
                and "gatehouse.approve" in json.dumps(m.blocks or [])
            ),
            None,
        )

    return eventually(card, f"the card of {marker}")


def measure_clicks(database_url: str, clicks: int, folder: Path) -> list[ClickCost]:
    """Serve the bot on `database_url` and measure `clicks` Approve clicks, one at a time."""
    with ExitStack() as stack:
        slack = stack.enter_context(running_slack())
        vault = stack.enter_context(running_vault(database_detached=True))
        setup = run_setup_script(vault, NOWHERE, folder)
        for user_id, name in PEOPLE.items():
            slack.add_user(user_id, name, email=f"{name}@example.com")
        general = slack.add_channel("war-room", members=list(PEOPLE))
        settings = bot_settings(
            slack_bot_token=slack.bot_token,
            slack_signing_secret=slack.signing_secret,
            slack_api_url=slack.api_url,
            vault_addr=vault.url,
            vault_auth="approle",
            vault_role_id=setup.role_id,
            vault_secret_id=setup.secret_id,
            database_url=database_url,
        )
        bot = stack.enter_context(running_gatehouse(settings))
        tally = stack.enter_context(_counting(bot.gatehouse.engine))
        people = SlackClient(slack, bot.events_url)
        channel = _open_incident(slack, people, general)
        return [
            _measure_click(tally, slack, vault, people, channel, number)
            for number in range(1, clicks + 1)
        ]
    raise AssertionError("unreachable: the ExitStack block returns")


def _measure_click(
    tally: _Tally,
    slack: SlackEmulator,
    vault: VaultEmulator,
    people: SlackClient,
    channel: str,
    number: int,
) -> ClickCost:
    card = _file_request(slack, people, channel, number)
    match = REQUEST_ID.search(card.text)
    assert match is not None, card.text
    _wait_quiet(tally, slack, vault)
    bot_before, claims_engine_before, claims_before, sites_before = tally.snapshot()
    slack_from, vault_from = len(slack.calls), len(vault.calls)

    clicked = people.block_action(
        APPROVER, "gatehouse.approve", match.group(0), channel_id=channel, message_ts=card.ts
    )
    assert clicked.status == 200 and clicked.acked_in_time, clicked.text
    eventually(
        lambda: any("is ready" in m.text for m in slack.thread(channel, card.ts)),
        f"the delivery of {match.group(0)}",
    )
    _wait_quiet(tally, slack, vault)

    bot_after, claims_engine_after, claims_after, sites_after = tally.snapshot()
    bot_counts = bot_after - bot_before
    claims_engine_counts = claims_engine_after - claims_engine_before
    return ClickCost(
        transactions=bot_counts["begin"],
        commits=bot_counts["commit"],
        rollbacks=bot_counts["rollback"],
        claim_transactions=claims_engine_counts["begin"],
        claim_statements=claims_engine_counts["statement"],
        transaction_sites=sites_after - sites_before,
        claims=claims_after - claims_before,
        vault_requests=Counter(call.path for call in vault.calls[vault_from:]),
        slack_calls=Counter(call.method for call in slack.calls[slack_from:]),
    )


def _by_name(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def report(database: str, costs: list[ClickCost], *, sites: bool = False) -> None:
    for number, cost in enumerate(costs, start=1):
        print(f"{database} click {number}:")
        print(
            f"  transactions {cost.transactions:3d}   (aim: <= {TRANSACTIONS_AIM})"
            f"   commits {cost.commits}, rollbacks {cost.rollbacks}"
        )
        if sites:
            for site, count in sorted(cost.transaction_sites.items()):
                print(f"    {count} x {site}")
        if cost.claim_transactions:
            print(
                f"  claims' engine: transactions {cost.claim_transactions},"
                f" statements {cost.claim_statements}"
            )
        print(f"  claims       {cost.claims_held:3d}   ({_by_name(cost.claims)})")
        print(
            f"  Vault        {cost.vault_total:3d}   (floor: {VAULT_FLOOR})"
            f"   {_by_name(cost.vault_requests)}"
        )
        print(f"  Slack        {sum(cost.slack_calls.values()):3d}   {_by_name(cost.slack_calls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--sites", action="store_true", help="also print where each transaction began"
    )
    args = parser.parse_args()
    configure_logging(level="ERROR")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(bench_database(args.database, folder))
        report(args.database, measure_clicks(url, args.clicks, folder), sites=args.sites)


if __name__ == "__main__":
    main()
