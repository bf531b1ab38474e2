"""Audit export figures: records per second to a loopback webhook and Splunk HEC, on SQLite and
PostgreSQL, in the job's batches; and audit appends per second with an exporter running beside.

    .venv/bin/python -m tests.bench.export_bench [--events 20000] [--appends 2000]

Prints figures only; nothing here asserts a timing.
"""

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bot.domain.ports import AuditSink
from bot.services.audit_export import export_audit, export_backlog
from bot.store import SqlUnitOfWorkFactory, create_engine_for
from integrations.sinks import SplunkHecSink, WebhookSink
from tests.bench.audit_bench import appends_per_second, fill, with_postgres
from tests.emulators.sinks import SinkReceiver, running_receiver


def sinks_of(receiver: SinkReceiver) -> dict[str, Callable[[], AuditSink]]:
    return {
        "webhook": lambda: WebhookSink(receiver.webhook_url, receiver.webhook_secret),
        "splunk": lambda: SplunkHecSink(receiver.hec_url, receiver.hec_token),
    }


def export_rate(url: str, events: int, make_sink: Callable[[], AuditSink]) -> float:
    """Fill `events`, then run the export job until the sink has them all."""
    fill(url, events)
    engine = create_engine_for(url)
    uow = SqlUnitOfWorkFactory(engine)
    sink = make_sink()
    started = time.perf_counter()
    delivered = 0
    while delivered < events:
        delivered += sum(d.delivered for d in export_audit(uow=uow, sinks=[sink], clock=now))
    elapsed = time.perf_counter() - started
    assert export_backlog(uow=uow, sinks=[sink.name])[sink.name].records == 0
    engine.dispose()
    return events / elapsed


def appends_beside_an_exporter(url: str, count: int, make_sink: Callable[[], AuditSink]) -> float:
    """Appends per second (4 writers) while a replica exports them as they come."""
    stop = threading.Event()

    def exporter() -> None:
        engine = create_engine_for(url)
        uow = SqlUnitOfWorkFactory(engine)
        sink = make_sink()
        while not stop.is_set():
            try:
                (delivery,) = export_audit(uow=uow, sinks=[sink], clock=now)
            except Exception:
                time.sleep(0.01)  # until the writers have migrated the database
                continue
            if not delivery.delivered:
                time.sleep(0.05)  # caught up: look again soon (the job waits 5 s)
        engine.dispose()

    thread = threading.Thread(target=exporter, daemon=True)
    thread.start()
    try:
        return appends_per_second(url, count, 4)
    finally:
        stop.set()
        thread.join(timeout=10)


def now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--appends", type=int, default=2000)
    args = parser.parse_args()
    with running_receiver() as receiver:
        for name, make_sink in sinks_of(receiver).items():
            with tempfile.TemporaryDirectory() as folder:
                sqlite = f"sqlite:///{Path(folder) / 'export.db'}"
                rate = export_rate(sqlite, args.events, make_sink)
                print(f"SQLite      export to {name:7}: {rate:9.0f} records/s")
            rate_pg = with_postgres(partial(export_rate, events=args.events, make_sink=make_sink))
            if rate_pg is not None:
                print(f"PostgreSQL  export to {name:7}: {rate_pg:9.0f} records/s")
            receiver.accepted.clear()
            receiver.hec_events.clear()
        alone = with_postgres(partial(appends_per_second, count=args.appends, threads=4))
        beside = with_postgres(
            partial(
                appends_beside_an_exporter,
                count=args.appends,
                make_sink=sinks_of(receiver)["webhook"],
            )
        )
        if alone is not None and beside is not None:
            print(f"PostgreSQL  appends/s, 4 writers, no exporter  : {alone:9.0f}")
            print(f"PostgreSQL  appends/s, 4 writers, exporter on  : {beside:9.0f}")


if __name__ == "__main__":
    main()
