"""Many grants ending close together, issued through replicas that may be killed on the way:
the scenario of the replicas test and of the expiry benchmarks.

Grants are requested and approved through Slack (signed requests, spread over the replicas),
with durations chosen so that their ends fall evenly in a window. Vault's record of every
revocation (the emulator's) then says whether each grant was revoked, by whom, when, and how
many times; the expiry lag is Vault's revocation time minus the grant's end.
"""

import math
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.domain.access import RequestState
from bot.domain.grant import GrantStatus
from tests.emulators.slack.state import Channel
from tests.emulators.vault import Revocation
from tests.fleet import Fleet, Replica, eventually

SHORTEST = timedelta(seconds=3)  # a grant is never asked for less than this


@dataclass(frozen=True)
class Granted:
    request_id: str
    grant_id: str
    accessor: str
    ends_at: datetime


@dataclass
class ExpiryRun:
    channel_id: str
    granted: list[Granted]
    window: tuple[datetime, datetime]
    killed_at: float | None = None
    revocations: list[Revocation] = field(default_factory=list)

    def asked(self) -> dict[str, list[Revocation]]:
        """The revocations the bots asked Vault for, by grant token accessor."""
        by_target: dict[str, list[Revocation]] = {}
        for revocation in self.revocations:
            if revocation.cause == "request":
                by_target.setdefault(revocation.target, []).append(revocation)
        return by_target

    def killed_callers(self) -> set[str]:
        """Vault tokens (replicas) that asked for revocations before the kill and never after."""
        if self.killed_at is None:
            return set()
        asked = [r for rs in self.asked().values() for r in rs]
        after = {r.caller for r in asked if r.at > self.killed_at}
        return {r.caller for r in asked if r.caller not in after and r.caller is not None}

    def missed(self) -> list[str]:
        """Grants whose revocation no bot asked Vault for."""
        asked = self.asked()
        return [g.grant_id for g in self.granted if g.accessor not in asked]

    def revoked_twice(self) -> list[str]:
        """Grants revoked more than once, unless the first was the killed replica's last act
        (it asked Vault, then died before recording the answer: asking again is right)."""
        asked, killed = self.asked(), self.killed_callers()
        twice = []
        for grant in self.granted:
            by_live = [r for r in asked.get(grant.accessor, []) if r.caller not in killed]
            by_killed = len(asked.get(grant.accessor, [])) - len(by_live)
            if len(by_live) > 1 or by_killed > 1:
                twice.append(grant.grant_id)
        return twice

    def lags(self) -> list[float]:
        """Seconds from each grant's end to the first revocation a bot asked for."""
        asked = self.asked()
        return sorted(
            min(r.at for r in asked[g.accessor]) - g.ends_at.timestamp()
            for g in self.granted
            if g.accessor in asked
        )

    def report(self) -> str:
        lags = self.lags()
        if len(lags) < 2:
            return "expiry lag: too few grants to measure"
        cuts = statistics.quantiles(lags, n=100)
        ends = [g.ends_at for g in self.granted]
        by_caller = Counter(r.caller for rs in self.asked().values() for r in rs)
        killed = self.killed_callers()
        shares = ", ".join(
            f"{count}{' (killed)' if caller in killed else ''}"
            for caller, count in by_caller.most_common()
        )
        return (
            f"{len(self.granted)} grants ending over {(max(ends) - min(ends)).total_seconds():.1f}"
            f" s; expiry lag (Vault revocation - grant end): p50 {cuts[49]:.3f} s, "
            f"p99 {cuts[98]:.3f} s, max {lags[-1]:.3f} s; revocations asked per replica: {shares}"
        )


def issue_grants(
    fleet: Fleet,
    channel: Channel,
    replicas: list[Replica],
    *,
    count: int,
    window_start: datetime,
    window: timedelta,
    senders: int = 6,
) -> list[str]:
    """Request and approve `count` grants whose ends spread evenly over the window; each
    request goes to one replica and its approval to the next. Returns the request ids."""
    ids: list[str] = [""] * count
    failures: list[BaseException] = []
    lock = threading.Lock()

    def one(number: int) -> None:
        end = window_start + window * (number / max(1, count - 1))
        seconds = max(SHORTEST, end - datetime.now(UTC)).total_seconds()
        marker = f"grant-{number:05d}-of-many"
        asking = replicas[number % len(replicas)]
        since = fleet.posted_so_far(channel.id)
        asking.people.slash_command(
            "/request-access",
            f"inference-logs-ro {math.ceil(seconds)}s {marker}",
            user_id="U0ONCALL2",
            channel_id=channel.id,
        )
        card = fleet.card(channel.id, marker, since=since)
        request_id = fleet.request_id(card)
        approving = replicas[(number + 1) % len(replicas)]
        approving.people.block_action(
            "U0LEAD1", "gatehouse.approve", request_id, channel_id=channel.id, message_ts=card.ts
        )
        with lock:
            ids[number] = request_id

    def guarded(number: int) -> None:
        try:
            one(number)
        except BaseException as error:  # re-raised below, in the caller's thread
            with lock:
                failures.append(error)

    with ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(guarded, range(count)))
    if failures:
        raise failures[0]
    return ids


def granted(fleet: Fleet, request_ids: list[str]) -> list[Granted]:
    found = []
    with fleet.uow() as tx:
        for request_id in request_ids:
            grant = tx.grants.get_for_request(request_id)
            request = tx.requests.get(request_id)
            assert grant is not None and grant.token_accessor is not None, request_id
            assert request is not None and request.ends_at is not None, request_id
            found.append(Granted(request_id, grant.id, grant.token_accessor, request.ends_at))
    return found


def all_active(fleet: Fleet, request_ids: list[str]) -> bool:
    with fleet.uow() as tx:
        return all(
            (r := tx.requests.get(request_id)) is not None and r.state is RequestState.ACTIVE
            for request_id in request_ids
        )


def all_revoked(fleet: Fleet, grants: list[Granted]) -> bool:
    with fleet.uow() as tx:
        return all(
            (g := tx.grants.get(grant.grant_id)) is not None and g.status is GrantStatus.REVOKED
            for grant in grants
        )


def run_expiries(
    fleet: Fleet,
    replicas: list[Replica],
    *,
    count: int,
    window: timedelta,
    lead: timedelta,
    kill: Replica | None = None,
) -> ExpiryRun:
    """Issue `count` grants ending within `window`, starting `lead` from now; kill `kill` in
    the middle of the window; wait until every grant is recorded revoked and told."""
    channel = fleet.open_incident(replicas[0], f"expiries {int(time.time())}")
    window_start = datetime.now(UTC) + lead
    request_ids = issue_grants(
        fleet, channel, replicas, count=count, window_start=window_start, window=window
    )
    eventually(lambda: all_active(fleet, request_ids), "every grant active", timeout=60)
    run = ExpiryRun(channel.id, granted(fleet, request_ids), (window_start, window_start + window))
    if kill is not None:
        middle = window_start + window / 2
        time.sleep(max(0.0, (middle - datetime.now(UTC)).total_seconds()))
        run.killed_at = time.time()
        kill.kill()
    last_end = max(g.ends_at for g in run.granted)
    wait = (last_end - datetime.now(UTC)).total_seconds() + 60
    eventually(lambda: all_revoked(fleet, run.granted), "every grant revoked", timeout=wait)
    eventually(fleet.settled, "every requester told")
    run.revocations = fleet.vault.revocations()
    return run


def expired_notices(fleet: Fleet, channel_id: str) -> Counter[str]:
    """How many "expired" replies each request's thread got."""
    counts: Counter[str] = Counter()
    for message in fleet.slack.messages(channel_id):
        if message.thread_ts and "ended: it expired at" in message.text:
            counts[message.thread_ts] += 1
    return counts
