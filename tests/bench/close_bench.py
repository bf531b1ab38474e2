"""Closing an incident with many active grants: revocations in parallel against one at a time.

    .venv/bin/python -m tests.bench.close_bench [--grants 200] [--vault-latency-ms 0]

Two incidents with the same number of active grants, issued for real by the Vault broker
against the Vault emulator (in this process; the bot's side runs in another, so the two do not
share an interpreter). One is closed as Gatehouse closes (revocations 4 at a time), the other
with the same work done one grant at a time; each figure is the time from the close to the
last revocation Vault confirmed. `--vault-latency-ms` adds a delay to every Vault answer,
as a network between the bot and Vault would. Prints figures only.
"""

import argparse
import multiprocessing
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot import bootstrap
from bot.domain.access import Verdict
from bot.domain.grant import GrantStatus
from bot.domain.incident import Severity
from bot.log_setup import configure_logging
from bot.services import access, incidents, issuing
from bot.store import migrate
from tests.databases import admin_engine, fresh_postgres_database
from tests.emulators.vault import running_vault
from tests.fleet import NOWHERE
from tests.harness import bot_settings
from tests.tools.vault_setup import run_setup_script


@dataclass(frozen=True)
class Closed:
    how: str
    grants: int
    seconds: float  # from the close to the last revocation confirmed
    confirmed: int


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_with_grants(gatehouse: bootstrap.Gatehouse, name: str, count: int) -> str:
    incident = incidents.start_incident(
        uow=gatehouse.uow,
        title=name,
        severity=Severity.SEV2,
        opened_by="U0ONCALL1",
        channel_id=f"C0{name.upper()}",
        channel_name=f"inc-{name}",
        now=utc_now(),
    )
    for number in range(count):
        request = access.request_access(
            uow=gatehouse.uow,
            policy=gatehouse.policy,
            channel_id=incident.channel_id,
            requester_id="U0ONCALL2",
            resource="inference-logs-ro",
            duration="1h",
            reason=f"close bench {number}",
            now=utc_now(),
        )
        access.decide_request(
            uow=gatehouse.uow,
            request_id=request.id,
            approver_id="U0LEAD1",
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
        assert issued.credential is not None, issued.error
    return incident.id


def close(gatehouse: bootstrap.Gatehouse, incident_id: str, how: str, at_once: int) -> Closed:
    started = utc_now()
    incidents.close_incident(
        uow=gatehouse.uow,
        policy=gatehouse.policy,
        broker=gatehouse.broker,
        incident_id=incident_id,
        closed_by="U0ONCALL1",
        resolution="bench",
        clock=utc_now,
        revocations_at_once=at_once,
    )
    with gatehouse.uow() as tx:
        grants = tx.grants.list_for_incident(incident_id)
    confirmed = [g.revoked_at for g in grants if g.status is GrantStatus.REVOKED and g.revoked_at]
    last = max(confirmed, default=started)
    return Closed(how, len(grants), (last - started).total_seconds(), len(confirmed))


def bot_side(
    database_url: str,
    vault_url: str,
    role_id: str,
    secret_id: str,
    count: int,
    results: "multiprocessing.Queue[list[Closed]]",
) -> None:
    """In its own process: issue both incidents' grants, then close them both ways."""
    configure_logging(level="WARNING")
    settings = bot_settings(
        database_url=database_url,
        vault_addr=vault_url,
        vault_auth="approle",
        vault_role_id=role_id,
        vault_secret_id=secret_id,
    )
    gatehouse = bootstrap.build(settings)
    parallel = open_with_grants(gatehouse, "parallel", count)
    sequential = open_with_grants(gatehouse, "sequential", count)
    figures = [
        close(gatehouse, parallel, f"{incidents.PARALLEL_REVOCATIONS} at a time (the close)",
              incidents.PARALLEL_REVOCATIONS),
        close(gatehouse, sequential, "one grant at a time", 1),
    ]  # fmt: skip
    results.put(figures)
    gatehouse.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=200)
    parser.add_argument("--vault-latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    admin = admin_engine()
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_postgres_database(admin) as url,
        running_vault(database_detached=True) as vault,
    ):
        setup = run_setup_script(vault, NOWHERE, Path(folder))
        migrate.upgrade(url)
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[list[Closed]] = context.Queue()
        worker = context.Process(
            target=bot_side,
            args=(url, vault.url, setup.role_id, setup.secret_id, args.grants, results),
        )
        vault.set_delay(args.vault_latency_ms / 1000)
        worker.start()
        figures = results.get(timeout=3600)
        worker.join(timeout=60)
    admin.dispose()
    for closed in figures:
        print(
            f"{closed.how:<32} {closed.confirmed}/{closed.grants} revocations confirmed "
            f"in {closed.seconds:6.2f} s"
        )
    latency = f", Vault answering in +{args.vault_latency_ms:g} ms" if args.vault_latency_ms else ""
    print(f"ratio one-at-a-time / close: {figures[1].seconds / figures[0].seconds:.2f}{latency}")


if __name__ == "__main__":
    main()
