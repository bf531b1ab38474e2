"""Gatehouse as it runs in production, for the tests and benchmarks that kill it: `gatehouse run`
processes in HTTP mode against one database and the Slack and Vault emulators (loopback
servers in this process, so their records can be read directly).

Each replica is `gatehouse run` (bot.cli) in a process of its own, forked from a server that
has the bot's modules loaded already, so that a restart takes a fraction of a second. It logs
in to Vault with the AppRole that deploy/vault/setup.sh made, so Vault's record of who revoked
what names the replica. Replicas die by SIGKILL (`kill`), as in a power cut, or at a named
step (`arm_crash`, read by bot/services/crashpoints.py).
"""

import multiprocessing
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine, or_, select
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.cli import main
from bot.domain.access import RequestState
from bot.domain.audit import Action
from bot.domain.grant import GrantStatus
from bot.domain.rules import AccessPolicy
from bot.policy.load import load_policy
from bot.services.crashpoints import CRASH_FILE_VARIABLE
from bot.slack import notifier
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from bot.store.tables import access_requests
from tests import waiting
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.slack.state import Channel
from tests.emulators.vault import VaultEmulator, running_vault
from tests.harness import EXAMPLE_POLICY, archiving_at_once
from tests.tools.vault_setup import SetUpVault, run_setup_script

T = TypeVar("T")
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)  # whenever an archive is due, it counts
# The Vault emulator's database engine runs detached: credentials log in nowhere.
NOWHERE = "postgresql://{{username}}:{{password}}@db.invalid:5432/ml"
PEOPLE = {
    "U0ONCALL1": "ada",
    "U0ONCALL2": "grace",
    "U0LEAD1": "linus",
    "U0LEAD2": "barbara",
    "U0SEC1": "radia",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, *, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{url}: the bot exited")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


_CARD_ID = re.compile(r"\((R-[A-Z2-7]{8})\)$")


def card_request_id(text: str) -> str:
    """The id at the end of a request card's notification text ("… (R-7K3QF2AB)"), or ""."""
    found = _CARD_ID.search(text or "")
    return found.group(1) if found else ""


def eventually(check: Callable[[], T | None], what: str, *, timeout: float = 30.0) -> T:
    """Replicas restart and share two cores: they get longer than a single bot."""
    return waiting.eventually(check, what, timeout=timeout)


def _run_bot(environment: dict[str, str], log: str) -> None:
    """In the replica's process: `gatehouse run` with this environment, output to `log`."""
    os.environ.clear()
    os.environ.update(environment)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(output, 1)
    os.dup2(output, 2)
    sys.argv = ["gatehouse", "run"]
    main()


_LAUNCHER = multiprocessing.get_context("forkserver")
_PRELOADED = ["bot.cli", "bot.bootstrap", "tests.fleet"]


@dataclass
class Replica:
    process: BaseProcess
    url: str
    people: SlackClient  # signed requests from the people of PEOPLE, to this replica
    log: Path
    policy: AccessPolicy  # the policy it runs with: what its sweep will do, and when

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.kill()

    def died_by_sigkill(self, timeout: float = 30) -> bool:
        self.process.join(timeout=timeout)
        return self.process.exitcode == -signal.SIGKILL


@dataclass
class Fleet:
    slack: SlackEmulator
    vault: VaultEmulator
    setup: SetUpVault
    database_url: str
    folder: Path
    uow: SqlUnitOfWorkFactory
    engine: Engine
    settings: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)

    @property
    def crash_file(self) -> Path:
        return self.folder / "crash-at"

    def environment(self, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "GATEHOUSE_SLACK_API_URL": self.slack.api_url,
            "VAULT_ADDR": self.vault.url,
            "GATEHOUSE_VAULT_AUTH": "approle",
            "GATEHOUSE_VAULT_ROLE_ID": self.setup.role_id,
            "GATEHOUSE_VAULT_SECRET_ID": self.setup.secret_id,
            "DATABASE_URL": self.database_url,
            "GATEHOUSE_POLICY": str(archiving_at_once(EXAMPLE_POLICY)),
            "GATEHOUSE_MODE": "http",
            "GATEHOUSE_LOG_LEVEL": "WARNING",
            "GATEHOUSE_HOST": "127.0.0.1",
            "GATEHOUSE_PORT": str(port),
            CRASH_FILE_VARIABLE: str(self.crash_file),
            **self.settings,
        }

    def start(self, count: int = 1) -> list[Replica]:
        """Start `count` replicas side by side and wait until each one answers."""
        _LAUNCHER.set_forkserver_preload(_PRELOADED)  # taken when the server first starts
        started = []
        for _ in range(count):
            port = free_port()
            log = self.folder / f"replica-{len(self.replicas) + 1}.log"
            environment = self.environment(port)
            process = _LAUNCHER.Process(target=_run_bot, args=(environment, str(log)), daemon=True)
            process.start()
            url = f"http://127.0.0.1:{port}"
            people = SlackClient(self.slack, f"{url}/slack/events")
            policy = load_policy(environment["GATEHOUSE_POLICY"])
            replica = Replica(process, url, people, log, policy)
            self.replicas.append(replica)
            started.append(replica)
        for replica in started:
            wait_healthy(f"{replica.url}/healthz", alive=replica.process.is_alive)
        return started

    def arm_crash(self, point: str) -> None:
        """The next time any replica reaches `point`, it dies (SIGKILL)."""
        self.crash_file.write_text(point)

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.alive:
                replica.stop()

    def audit_verify(self) -> str:
        """`gatehouse audit verify` on the fleet's database: its output, and "ok" last if so."""
        result = CliRunner().invoke(cli, ["audit", "verify"], env=self.environment(free_port()))
        return result.output + ("ok" if result.exit_code == 0 else f"exit {result.exit_code}")

    # -- Slack, as the people see it ------------------------------------------------------------

    def open_incident(self, replica: Replica, title: str) -> Channel:
        replica.people.slash_command(
            "/incident", f"open {title}", user_id="U0ONCALL1", channel_id=self.general
        )
        slug = title.lower().replace(" ", "-")

        def created() -> Channel | None:
            for channel in list(self.slack.workspace.channels.values()):
                if channel.name.endswith(slug) and channel.pins:
                    return channel
            return None

        channel = eventually(created, f"the channel of {title}")
        channel.members.extend(p for p in PEOPLE if p not in channel.members)
        return channel

    @property
    def general(self) -> str:
        channel = self.slack.channel_by_name("war-room")
        assert channel is not None
        return channel.id

    def card(self, channel: str, marker: str, *, since: int = 0) -> Any:
        """The approval card whose request carries `marker` in its reason, posted after the
        channel's first `since` messages (see `posted_so_far`)."""
        workspace = self.slack.workspace

        def posted() -> Any:
            with workspace.lock:
                recent = workspace.channels[channel].history[since:]
            return next(
                (
                    m
                    for m in recent
                    if m.thread_ts in (None, m.ts)  # a card with replies is its thread's parent
                    and marker in str(m.blocks or "")
                ),
                None,
            )

        return eventually(posted, f"the card of {marker}")

    def posted_so_far(self, channel: str) -> int:
        with self.slack.workspace.lock:
            return len(self.slack.workspace.channels[channel].history)

    def request_id(self, card: Any) -> str:
        """The request a card is about: its notification text ends with the id."""
        return card_request_id(card.text)

    def thread(self, channel: str, card: Any) -> list[Any]:
        return self.slack.thread(channel, card.ts)

    def deliveries(self, request_id: str) -> int:
        """Credentials the requester received privately (ephemeral and DM) for the request."""
        shown = [str(e.blocks) for e in self.slack.ephemerals("U0ONCALL2")]
        shown += credential_posts(self.slack, "U0ONCALL2")
        return len([text for text in shown if request_id in text and "vault unwrap" in text])

    # -- the record -----------------------------------------------------------------------------

    def state(self, request_id: str) -> RequestState:
        with self.uow() as tx:
            request = tx.requests.get(request_id)
        assert request is not None
        return request.state

    def settled(self) -> bool:
        """Nothing left for recovery: no grant mid-issue or mid-revocation, every outcome
        shown, every expiry warning due sent, every close finished."""
        if self.warnings_due():
            return False  # read first: once recorded, the warning is an event not yet told
        with self.uow() as tx:
            moving = tx.grants.list_by_status([GrantStatus.ISSUING, GrantStatus.REVOKING], 1)
            undelivered = tx.requests.list_awaiting_delivery(1)
            cursor = tx.sink_cursors.lock(notifier.NAME)
            head = tx.audit.head()
            untold = bool(undelivered) or (
                head is not None and (cursor is None or cursor.event_seq < head.seq)
            )
            # Every close finished: its archive too, however far off it is due.
            closing = tx.incidents.list_closing(1, archive_closed_before=FAR_FUTURE)
        return not moving and not untold and not closing

    def warnings_due(self) -> bool:
        """Access the live replicas' sweep is to warn of its end and has not yet: that DM is
        work of its own, which comes without any click (a crash armed for the next post
        would take it). Read without locks, so a warning being recorded still counts."""
        before = max(
            (replica.policy.incident.expiry_warning for replica in self.replicas if replica.alive),
            default=timedelta(0),
        )
        if before <= timedelta(0):
            return False
        now = datetime.now(UTC)
        columns = access_requests.c
        statement = (
            select(columns.id)
            .where(
                columns.state == RequestState.ACTIVE.value,
                columns.ends_at <= now + before,
                columns.ends_at > now,
                or_(
                    columns.expiry_warned_for.is_(None),
                    columns.expiry_warned_for != columns.ends_at,
                ),
            )
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(statement).first() is not None

    def orphans(self) -> list[str]:
        """What Vault holds that our records do not own: grant tokens of grants not live,
        incident tokens of closed incidents, leases of tokens gone."""
        with self.uow() as tx:
            live = {g.id for g in tx.grants.list_by_status([GrantStatus.ACTIVE], 100_000)}
            open_incidents = {i.id for i in tx.incidents.list_open()}
        core = self.vault.core
        with core.lock:
            tokens = list(core.tokens.tokens.values())
            leases = list(core.leases.leases.values())
        found = []
        for token in tokens:
            meta = token.meta or {}
            if "gatehouse_grant" in meta and meta["gatehouse_grant"] not in live:
                found.append(f"grant token {token.accessor} of {meta['gatehouse_grant']}")
            elif meta.get("gatehouse_kind") == "incident" and (
                meta.get("gatehouse_incident") not in open_incidents
            ):
                found.append(f"incident token {token.accessor}")
        alive = {token.id for token in tokens}
        found += [f"lease {lease.id}" for lease in leases if lease.token_id not in alive]
        return found

    def audit_gaps(self) -> list[str]:
        """Records whose audit event is missing: each grant's steps, each request's end."""
        with self.uow() as tx:
            events = [event.entry for event in tx.audit.events()]
            grants = list(tx.grants.list_by_status(list(GrantStatus), 100_000))
            filed = {e.request_id for e in events if e.action == Action.REQUEST_FILED.value}
            requests = [tx.requests.get(request_id) for request_id in sorted(filter(None, filed))]
        seen = {(e.request_id, e.action) for e in events}
        by_grant = {(e.data.get("grant_id"), e.action) for e in events}
        gaps = []
        needed = {
            GrantStatus.ACTIVE: [Action.GRANT_ISSUING, Action.GRANT_ISSUED],
            GrantStatus.REVOKED: [Action.GRANT_ISSUED, Action.GRANT_REVOKED],
            GrantStatus.FAILED: [Action.GRANT_ISSUING, Action.GRANT_ISSUE_FAILED],
        }
        for grant in grants:
            for action in needed.get(grant.status, []):
                if (grant.id, action.value) not in by_grant:
                    gaps.append(f"{grant.id} {grant.status.value} without {action.value}")
        ends = {
            RequestState.EXPIRED: Action.REQUEST_EXPIRED,
            RequestState.REVOKED: Action.REQUEST_REVOKED,
            RequestState.ACTIVE: Action.REQUEST_APPROVED,
        }
        for request in filter(None, requests):
            end = ends.get(request.state)
            if end is not None and (request.id, end.value) not in seen:
                gaps.append(f"{request.id} {request.state.value} without {end.value}")
        return gaps


@contextmanager
def running_fleet(database_url: str, folder: Path, **settings: str) -> Iterator[Fleet]:
    """Emulators, Vault set up by setup.sh, the database migrated; replicas started on demand
    and stopped at the end. `settings`: extra environment for every replica."""
    with running_slack() as slack, running_vault(database_detached=True) as vault:
        for user_id, name in PEOPLE.items():
            slack.add_user(user_id, name)
        slack.add_channel("war-room", members=list(PEOPLE))
        setup = run_setup_script(vault, NOWHERE, folder)
        migrate.upgrade(database_url)
        engine = create_engine_for(database_url)
        fleet = Fleet(
            slack,
            vault,
            setup,
            database_url,
            folder,
            SqlUnitOfWorkFactory(engine),
            engine,
            settings,
        )
        try:
            yield fleet
        finally:
            fleet.stop()
            engine.dispose()


def credential_posts(slack: SlackEmulator, user: str) -> list[str]:
    """The blocks of every message posted in `user`'s DM channel, as posted: the credential
    message is redrawn without its credential once access ends."""
    channel = slack.dm_channel(user)
    if channel is None:
        return []
    return [
        str(call.args.get("blocks"))
        for call in slack.calls_to("chat.postMessage")
        if call.args.get("channel") == channel.id and call.status == 200
    ]
