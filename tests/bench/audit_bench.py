"""Audit chain figures: appends per second on SQLite and PostgreSQL, and verification speed.

    .venv/bin/python tests/bench/audit_bench.py [--events 1000000] [--appends 2000]

Verification is compared with bare hashlib.sha256 over the same canonical bytes: the ratio says
how much the chain walk (reading rows, rebuilding canonical JSON, comparing links) costs on top
of the hashing itself. Prints figures only; nothing here asserts a timing.
"""

import argparse
import hashlib
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from bot.domain.audit import GENESIS_HASH, canonical_json, seal, utc_iso, verify_chain
from bot.domain.events import DecisionRecorded
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from bot.store.tables import audit_events

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


def fill(url: str, count: int) -> list[bytes]:
    """Write a chain of `count` events straight into the table; return their canonical bytes."""
    migrate.upgrade(url)
    engine = create_engine_for(url)
    canonical: list[bytes] = []
    prev = GENESIS_HASH
    batch: list[dict[str, object]] = []
    with engine.begin() as connection:
        for n in range(count):
            entry = sample_event(n).to_entry()
            event = seal(entry, seq=n + 1, prev_hash=prev)
            canonical.append(entry.canonical())
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
    return canonical


def verify_rate(url: str) -> tuple[int, float]:
    engine = create_engine_for(url)
    started = time.perf_counter()
    with SqlUnitOfWorkFactory(engine).reader() as tx:
        report = verify_chain(tx.audit.chain_links())
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert report.ok, report.detail
    return report.checked, report.checked / elapsed


def bare_sha256_rate(canonical: list[bytes]) -> float:
    prev = GENESIS_HASH.encode()
    started = time.perf_counter()
    for body in canonical:
        prev = hashlib.sha256(prev + body).hexdigest().encode()
    return len(canonical) / (time.perf_counter() - started)


def with_postgres(run: Callable[[str], float]) -> float | None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite:///{Path(folder) / 'appends.db'}"
        print(
            f"SQLite      appends/s, 1 writer : {appends_per_second(sqlite, args.appends, 1):9.0f}"
        )
    for threads in (1, 4):
        rate = with_postgres(partial(appends_per_second, count=args.appends, threads=threads))
        if rate is not None:
            print(
                f"PostgreSQL  appends/s, {threads} writer{'s' if threads > 1 else ' '}: {rate:9.0f}"
            )

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'verify.db'}"
        started = time.perf_counter()
        canonical = fill(url, args.events)
        print(f"filled {args.events} events in {time.perf_counter() - started:.1f} s")
        checked, verify = verify_rate(url)
        bare = bare_sha256_rate(canonical)
        print(f"verify (SQLite, {checked} events): {verify:9.0f} events/s")
        print(f"bare hashlib.sha256, same bytes   : {bare:9.0f} events/s")
        print(f"ratio bare / verify               : {bare / verify:9.1f}x")


if __name__ == "__main__":
    main()
