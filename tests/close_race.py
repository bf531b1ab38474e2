"""The close race: six approvals in flight on PostgreSQL, `/incident close` sent 0-120 ms after.

The shared scenario of the close race test and benchmark. Each round opens an incident with six
pending requests, clicks Approve on all six at once (each click issues a credential through a
broker that answers after a Vault-like delay), and closes the incident from another thread a
random 0-120 ms later, all through the Slack workflows on one PostgreSQL database. The close
must succeed, and every credential issued, before or after it, must end revoked and be counted
in the close summary.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import Verdict
from bot.domain.errors import GatehouseError
from bot.domain.grant import Grant, GrantStatus
from bot.domain.incident import IncidentStatus, Severity
from bot.domain.ports import CredentialBroker, IncidentTokenLedger, IssuedCredential
from bot.domain.rules import AccessPolicy, ResourceRule
from bot.domain.summary import IncidentSummary
from bot.policy import load_policy
from bot.services import access, incidents, issuing
from bot.slack.views import slack_deps
from bot.store import SqlUnitOfWorkFactory, create_engine_for
from tests.harness import EXAMPLE_POLICY
from tests.unit.fakes import FakeBroker, FakeChat

RESOURCE = "inference-logs-ro"  # one approval, from ml-leads
REQUESTER = "U0ONCALL2"
APPROVER = "U0LEAD1"
COMMANDER = "U0ONCALL1"
APPROVALS_IN_FLIGHT = 6
LONGEST_CLOSE_DELAY = 0.120


class SlowBroker(FakeBroker):
    """A fake Vault that takes 20-60 ms to issue, as a real one across a network does."""

    def __init__(self, seed: int, *, ledger: IncidentTokenLedger) -> None:
        super().__init__(ledger=ledger)
        self._chance = random.Random(seed)
        self._chance_lock = threading.Lock()

    def issue(
        self, *, grant: Grant, resource: ResourceRule, until: datetime, now: datetime
    ) -> IssuedCredential:
        with self._chance_lock:
            delay = self._chance.uniform(0.020, 0.060)
        time.sleep(delay)
        return super().issue(grant=grant, resource=resource, until=until, now=now)

    def count_live(self, grants: list[Grant]) -> int:
        return sum(g.lease_id in self.live for g in grants)


@dataclass
class Round:
    """What one round left behind."""

    close_error: str | None
    incident_closed: bool
    grants: list[Grant]
    live_leases: int  # credentials the broker still holds live
    unrevoked_tokens: int  # incident tokens on record and not revoked
    summary: IncidentSummary | None
    click_outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def issued(self) -> list[Grant]:
        """Grants that got a credential from the broker."""
        return [g for g in self.grants if g.has_credential]

    @property
    def unreported(self) -> list[str]:
        """Requests with a credential that the close summary does not show revoked."""
        if self.summary is None:
            return [g.request_id for g in self.issued]
        told = [*self.summary.ended_by_close("revoked"), *self.summary.issued_after_close]
        confirmed = {
            line.request_id
            for line in told
            if line.issued_at is not None and line.revocation_confirmed_at is not None
        }
        return sorted(g.request_id for g in self.issued if g.request_id not in confirmed)

    @property
    def issued_after_close(self) -> int:
        """Credentials Vault issued after the close committed (the close summary's count)."""
        return 0 if self.summary is None else len(self.summary.issued_after_close)

    @property
    def won(self) -> bool:
        """The close succeeded, every credential is revoked in Vault and in the summary."""
        return (
            self.close_error is None
            and self.incident_closed
            and all(g.status in (GrantStatus.REVOKED, GrantStatus.FAILED) for g in self.grants)
            and self.live_leases == 0
            and self.unrevoked_tokens == 0
            and not self.unreported
        )

    def describe(self) -> str:
        statuses = Counter(g.status.value for g in self.grants)
        return (
            f"close error={self.close_error!r} closed={self.incident_closed} "
            f"grants={dict(statuses)} live leases={self.live_leases} "
            f"unrevoked tokens={self.unrevoked_tokens} unreported={self.unreported} "
            f"clicks={dict(self.click_outcomes)}"
        )


def _click(deps: Deps, request_id: str) -> str:
    try:
        workflows.decide(
            deps, request_id=request_id, approver=APPROVER, verdict=Verdict.APPROVE, reason=None
        )
    except GatehouseError as refused:
        return type(refused).__name__
    except DBAPIError as failed:  # what the approver would have been told: something broke
        return type(failed.orig).__name__
    return "approved"


def _close(deps: Deps, channel_id: str, delay: float) -> str | None:
    time.sleep(delay)
    try:
        lifecycle.close_incident(deps, channel_id=channel_id, user=COMMANDER, resolution="race")
    except DBAPIError as failed:  # the round reports what the commander would have seen
        return type(failed.orig).__name__
    except GatehouseError as refused:
        return f"{type(refused).__name__}: {refused}"
    return None


def play_round(
    uow: SqlUnitOfWorkFactory,
    broker: CredentialBroker,
    number: int,
    seed: int,
    *,
    still_live: Callable[[list[Grant]], int],
    policy: AccessPolicy | None = None,
) -> Round:
    """One round on a migrated database: a new incident, six approvals, a close.

    `still_live` counts the grants whose credential the broker still holds live."""
    policy = policy or load_policy(EXAMPLE_POLICY)
    deps = slack_deps(
        uow=uow, policy=policy, broker=broker, chat=FakeChat(), clock=lambda: datetime.now(UTC)
    )
    incident = incidents.start_incident(
        uow=uow,
        title=f"Close race {number}",
        severity=Severity.SEV2,
        opened_by=COMMANDER,
        channel_id=f"C0RACE{seed}X{number}",
        channel_name=f"inc-close-race-{seed}-{number}",
        now=datetime.now(UTC),
    )
    requests = [
        access.request_access(
            uow=uow,
            policy=policy,
            channel_id=incident.channel_id,
            requester_id=REQUESTER,
            resource=RESOURCE,
            duration="1h",
            reason=f"close race {number}.{click}",
            now=datetime.now(UTC),
        ).id
        for click in range(APPROVALS_IN_FLIGHT)
    ]
    delay = random.Random(seed * 1000 + number).uniform(0, LONGEST_CLOSE_DELAY)
    with ThreadPoolExecutor(max_workers=APPROVALS_IN_FLIGHT + 1) as pool:
        clicks: list[Future[str]] = [pool.submit(_click, deps, r) for r in requests]
        close_error = pool.submit(_close, deps, incident.channel_id, delay).result()
        outcomes = Counter(click.result() for click in clicks)
    with uow() as tx:
        found = tx.incidents.get(incident.id)
        closed = found is not None and found.status is IncidentStatus.CLOSED
        grants = list(tx.grants.list_for_incident(incident.id))
        unrevoked_tokens = len(tx.vault_tokens.list_unrevoked(incident.id))
    summary = None
    if closed:
        summary = incidents.build_summary(uow=uow, incident_id=incident.id)
    return Round(
        close_error=close_error,
        incident_closed=closed,
        grants=grants,
        live_leases=still_live(grants),
        unrevoked_tokens=unrevoked_tokens,
        summary=summary,
        click_outcomes=outcomes,
    )


def play(database_url: str, rounds: int, *, seed: int = 1) -> list[Round]:
    """`rounds` rounds on one migrated PostgreSQL database, one after another. Logging is
    the caller's: a test keeps pytest's, the bench quiets it."""
    engine = create_engine_for(database_url)
    try:
        uow = SqlUnitOfWorkFactory(engine)
        broker = SlowBroker(
            seed, ledger=issuing.StoredIncidentTokens(uow, lambda: datetime.now(UTC))
        )
        return [
            play_round(uow, broker, number, seed, still_live=broker.count_live)
            for number in range(rounds)
        ]
    finally:
        engine.dispose()
