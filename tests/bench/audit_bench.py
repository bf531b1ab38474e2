"""Audit chain figures: appends per second on SQLite and PostgreSQL, and verification speed.

    .venv/bin/python -m tests.bench.audit_bench [--events 1000000] [--ten-million] [--appends 2000]

Appends per second with 1 and 4 writers, then verification of a filled chain on each database,
beside bare hashlib.sha256 over the same canonical bytes: the ratio says how much the chain walk
(reading rows, comparing links) costs on top of the hashing itself, and the verifier's peak RSS
says whether memory stays flat as the chain grows. Prints figures only; nothing asserts a timing.
"""

import argparse
import hashlib
import multiprocessing
import os
import resource
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from bot.domain.audit import (
    GENESIS_HASH,
    ChainRow,
    canonical_json,
    seal,
    utc_iso,
    verify_chain,
    verify_rows,
)
from bot.domain.events import DecisionRecorded
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from bot.store.tables import audit_events

T = TypeVar("T")
T0 = datetime(2026, 11, 23, tzinfo=UTC)
POSTGRES_ADMIN = os.environ.get(
    "GATEHOUSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def sample_event(n: int) -> DecisionRecorded:
    return DecisionRecorded(
        at=T0 + timedelta(milliseconds=n),
        actor=f"U0LEAD{n % 3}",
        incident_id=f"INC-20261123-{n // 1000:08d}",
        request_id=f"R-{n:08d}",
        verdict="approve",
        approvals=1,
        approvals_required=2,
    )


def appends_per_second(url: str, count: int, threads: int) -> float:
    migrate.upgrade(url)
    engine = create_engine_for(url)
    uow = SqlUnitOfWorkFactory(engine)
    each = count // threads

    def writer(offset: int) -> None:
        for n in range(offset, offset + each):
            with uow() as tx:
                tx.audit.append(sample_event(n))
                tx.commit()

    workers = [threading.Thread(target=writer, args=(i * each,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    with uow() as tx:
        assert verify_chain(tx.audit.events()).checked == each * threads
    engine.dispose()
    return each * threads / elapsed


def fill(url: str, count: int) -> None:
    """Write a chain of `count` events straight into the table, 10,000 rows per statement."""
    migrate.upgrade(url)
    engine = create_engine_for(url)
    prev = GENESIS_HASH
    batch: list[dict[str, object]] = []
    with engine.begin() as connection:
        for n in range(count):
            entry = sample_event(n).to_entry()
            event = seal(entry, seq=n + 1, prev_hash=prev)
            prev = event.hash
            batch.append(
                {
                    "seq": event.seq,
                    "at": utc_iso(entry.at),
                    "action": entry.action,
                    "actor": entry.actor,
                    "incident_id": entry.incident_id,
                    "request_id": entry.request_id,
                    "data": canonical_json(entry.data).decode(),
                    "prev_hash": event.prev_hash,
                    "hash": event.hash,
                }
            )
            if len(batch) == 10_000:
                connection.execute(insert(audit_events), batch)
                batch = []
        if batch:
            connection.execute(insert(audit_events), batch)
    engine.dispose()


def verify_figures(url: str) -> tuple[int, float, float, int]:
    """(events checked, verify events/s, bare sha256 events/s, peak RSS in MiB), measured in a
    process of its own so the peak is the verifier's alone."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_verify_in_child, (url,))


def _verify_in_child(url: str) -> tuple[int, float, float, int]:
    engine = create_engine_for(url)
    with SqlUnitOfWorkFactory(engine).reader() as tx:
        started = time.perf_counter()
        report = verify_rows(tx.audit.chain_rows(), recanonical=tx.audit.canonical)
        elapsed = time.perf_counter() - started
        assert report.ok, report.detail
        bare = _bare_sha256_seconds(tx.audit.chain_rows())
    engine.dispose()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
    return report.checked, report.checked / elapsed, report.checked / bare, peak_mib


def _bare_sha256_seconds(rows: Iterable[ChainRow]) -> float:
    """The time hashlib.sha256 alone takes over the same bytes, chained the same way, a batch
    at a time (reading the rows is not counted)."""
    prev = GENESIS_HASH.encode()
    seconds = 0.0
    bodies = (row[3] for row in rows)
    while batch := list(islice(bodies, 10_000)):
        started = time.perf_counter()
        for body in batch:
            prev = hashlib.sha256(prev + body).hexdigest().encode()
        seconds += time.perf_counter() - started
    return seconds


def with_postgres(run: Callable[[str], T]) -> T | None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"gatehouse_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        print(f"PostgreSQL not reachable ({error.__class__.__name__}); skipping its figures")
        return None
    try:
        return run(make_url(POSTGRES_ADMIN).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def verify_line(database: str, url: str, *, events: int) -> None:
    started = time.perf_counter()
    fill(url, events)
    filled = time.perf_counter() - started
    checked, verify, bare, peak_mib = verify_figures(url)
    print(
        f"{database:<11} verify {checked:>10} events: {verify:9.0f}/s | bare sha256 "
        f"{bare:9.0f}/s | ratio {bare / verify:4.1f}x (goal <= 3x) | peak RSS {peak_mib} MiB "
        f"(filled in {filled:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--ten-million", action="store_true", help="verify 10,000,000 events as well"
    )
    parser.add_argument("--appends", type=int, default=2000)
    args = parser.parse_args()

    for threads in (1, 4):
        with tempfile.TemporaryDirectory() as folder:
            sqlite = f"sqlite:///{Path(folder) / 'appends.db'}"
            rate = appends_per_second(sqlite, args.appends, threads)
        print(f"SQLite      appends/s, {threads} writer{'s' if threads > 1 else ' '}: {rate:9.0f}")
        on_postgres = with_postgres(
            partial(appends_per_second, count=args.appends, threads=threads)
        )
        if on_postgres is not None:
            print(
                f"PostgreSQL  appends/s, {threads} writer{'s' if threads > 1 else ' '}: "
                f"{on_postgres:9.0f} (goal >= 3000 with 4)"
            )

    for events in [args.events, *([10_000_000] if args.ten_million else [])]:
        with tempfile.TemporaryDirectory() as folder:
            verify_line("SQLite", f"sqlite:///{Path(folder) / 'verify.db'}", events=events)
        with_postgres(partial(verify_line, "PostgreSQL", events=events))


if __name__ == "__main__":
    main()
