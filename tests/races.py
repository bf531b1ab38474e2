"""Approval races across processes: for each request (2 of N approvals), three approvers click
at once and each click is delivered 1-4 times (Slack retries, double clicks), spread over
several processes sharing one PostgreSQL. The shared scenario of the race test and benchmark.

Each process runs the Slack workflow (`workflows.decide`, which issues on the approving
decision) on its own engine, with a broker that counts what it issues.
"""

import multiprocessing
import queue
import random
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.errors import AlreadyDone, InvalidState
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.log_setup import configure_logging
from bot.policy import load_policy
from bot.services import access, incidents
from bot.slack.views import slack_deps
from bot.store import SqlUnitOfWorkFactory, create_engine_for
from tests.harness import EXAMPLE_POLICY
from tests.unit.fakes import FakeBroker, FakeChat

RESOURCE = "feature-store-rw"  # two approvals, from ml-leads and security
REQUESTER = "U0ONCALL2"
APPROVERS = ("U0LEAD1", "U0LEAD2", "U0LEAD3", "U0SEC1", "U0SEC2")
Click = tuple[str, str]  # (request id, approver)


@dataclass(frozen=True)
class Raced:
    """What one process did: the requests it issued for, how its clicks ended, when."""

    issued: list[str]
    outcomes: dict[str, int]
    started: float
    finished: float


@dataclass
class RaceResult:
    races: int
    seconds: float
    issued: Counter[str]  # credentials issued per request, over every process
    outcomes: Counter[str]  # how each delivered click ended

    @property
    def double_issued(self) -> list[str]:
        return sorted(request for request, count in self.issued.items() if count > 1)

    def report(self) -> str:
        return (
            f"{self.races} races, {sum(self.outcomes.values())} clicks delivered "
            f"({dict(self.outcomes)}): {len(self.double_issued)} double-issued credentials, "
            f"{self.races / self.seconds:.0f} races/s"
        )


@contextmanager
def _engine(database_url: str) -> Iterator[SqlUnitOfWorkFactory]:
    engine = create_engine_for(database_url)
    try:
        yield SqlUnitOfWorkFactory(engine)
    finally:
        engine.dispose()


def file_requests(database_url: str, count: int, *, threads: int = 8) -> list[str]:
    """An incident with `count` pending requests for RESOURCE."""
    policy = load_policy(EXAMPLE_POLICY)
    now = datetime.now(UTC)
    with _engine(database_url) as uow:
        incident = incidents.start_incident(
            uow=uow,
            title="Races",
            severity=Severity.SEV2,
            opened_by="U0ONCALL1",
            channel_id="C0RACES",
            channel_name="inc-races",
            now=now,
        )

        def one(number: int) -> str:
            return access.request_access(
                uow=uow,
                policy=policy,
                channel_id=incident.channel_id,
                requester_id=REQUESTER,
                resource=RESOURCE,
                duration="30m",
                reason=f"race {number}",
                now=now,
            ).id

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, range(count)))


def plan(requests: list[str], processes: int, seed: int) -> list[list[Click]]:
    """Each process's clicks: per request three approvers, each click delivered 1-4 times,
    every delivery given to a random process."""
    chance = random.Random(seed)
    shares: list[list[Click]] = [[] for _ in range(processes)]
    for request_id in requests:
        for approver in chance.sample(APPROVERS, 3):
            for _ in range(chance.randint(1, 4)):
                shares[chance.randrange(processes)].append((request_id, approver))
    return shares


def _click(deps: Deps, click: Click) -> str:
    request_id, approver = click
    try:
        workflows.decide(
            deps, request_id=request_id, approver=approver, verdict=Verdict.APPROVE, reason=None
        )
    except AlreadyDone:
        return "same click again"
    except InvalidState:
        return "already approved"
    return "decided"


def _racer(
    database_url: str,
    batches: list[list[Click]],
    barrier: Barrier,
    results: "multiprocessing.Queue[Raced | str]",
    threads: int,
) -> None:
    """One process: at each batch's start (all processes together), its clicks at once. A
    failure is sent back as its traceback, so the race fails with it instead of waiting."""
    try:
        _race_batches(database_url, batches, barrier, results, threads)
    except BaseException:
        barrier.abort()  # the other processes stop waiting for this one
        results.put(traceback.format_exc())
        raise


def _race_batches(
    database_url: str,
    batches: list[list[Click]],
    barrier: Barrier,
    results: "multiprocessing.Queue[Raced | str]",
    threads: int,
) -> None:
    configure_logging(level="WARNING")
    broker = FakeBroker()
    outcomes: Counter[str] = Counter()
    started = 0.0
    with _engine(database_url) as uow:
        deps = slack_deps(
            uow=uow,
            policy=load_policy(EXAMPLE_POLICY),
            broker=broker,
            chat=FakeChat(),
            clock=lambda: datetime.now(UTC),
        )
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for batch in batches:
                barrier.wait()
                started = started or time.time()
                outcomes.update(pool.map(partial(_click, deps), batch))
    results.put(Raced(broker.issued, dict(outcomes), started, time.time()))


def race(
    database_url: str,
    requests: list[str],
    *,
    processes: int = 3,
    threads: int = 8,
    batch: int = 50,
    seed: int = 1,
) -> RaceResult:
    """Run the races in `processes` processes, `batch` requests at a time."""
    groups = [requests[i : i + batch] for i in range(0, len(requests), batch)]
    shuffle = random.Random(seed).shuffle
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results: multiprocessing.Queue[Raced | str] = context.Queue()
    workers = []
    for share in plan(requests, processes, seed):
        by_request: dict[str, list[Click]] = {}
        for click in share:
            by_request.setdefault(click[0], []).append(click)
        batches = [[c for r in group for c in by_request.get(r, [])] for group in groups]
        for clicks in batches:
            shuffle(clicks)
        workers.append(
            context.Process(target=_racer, args=(database_url, batches, barrier, results, threads))
        )
    for worker in workers:
        worker.start()
    collected = _collect(results, workers)
    issued: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for raced in collected:
        issued.update(raced.issued)
        outcomes.update(raced.outcomes)
    seconds = max(r.finished for r in collected) - min(r.started for r in collected)
    return RaceResult(len(requests), seconds, issued, outcomes)


def _collect(
    results: "multiprocessing.Queue[Raced | str]", workers: "Sequence[BaseProcess]"
) -> list[Raced]:
    """Each process's result; the first failure (its traceback), or processes that died
    without a word, end the race at once."""
    collected: list[Raced] = []
    while len(collected) < len(workers):
        try:
            item = results.get(timeout=5)
        except queue.Empty:
            if any(worker.is_alive() for worker in workers):
                continue
            codes = [worker.exitcode for worker in workers]
            raise AssertionError(f"racing processes died without a result: {codes}") from None
        if isinstance(item, str):
            for worker in workers:
                worker.terminate()
            raise AssertionError(f"a racing process failed:\n{item}")
        collected.append(item)
    for worker in workers:
        worker.join(timeout=60)
    return collected


def recorded_outcomes(database_url: str, requests: list[str]) -> Counter[str]:
    """What the database says of each request: its state, its live grants, its approvals."""
    found: Counter[str] = Counter()
    with _engine(database_url) as uow, uow() as tx:
        for request_id in requests:
            request = tx.requests.get(request_id)
            assert request is not None
            grants = tx.grants.list_for_request(request_id)
            live = [g for g in grants if g.status is not GrantStatus.FAILED]
            approvals = len(set(request.approvers_so_far))
            active = request.state is RequestState.ACTIVE
            found[f"active={active} grants={len(live)} approvals={approvals}"] += 1
    return found
