"""Approval races across processes on PostgreSQL: double-issued credentials and races/s.

    .venv/bin/python -m tests.bench.race_bench [--races 10000] [--processes 3] [--threads 8]

Each race is a request needing 2 approvals; three approvers click at once and each click is
delivered 1-4 times, the deliveries spread over the processes. Every process runs the Slack
workflow (decide, then issue on the approving decision) with a broker that counts what it
issues; Slack is a recording fake. Prints figures only.
"""

import argparse

from bot.store import migrate
from tests.databases import admin_engine, fresh_postgres_database
from tests.races import file_requests, race, recorded_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--races", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="racing threads per process")
    parser.add_argument("--batch", type=int, default=100, help="races started together")
    args = parser.parse_args()
    admin = admin_engine()
    with fresh_postgres_database(admin) as url:
        migrate.upgrade(url)
        print(f"filing {args.races} requests…", flush=True)
        requests = file_requests(url, args.races)
        result = race(
            url, requests, processes=args.processes, threads=args.threads, batch=args.batch
        )
        print(result.report())
        print(f"requests never issued: {len(set(requests) - set(result.issued))}")
        for outcome, count in sorted(recorded_outcomes(url, requests).items()):
            print(f"in the database: {count} × {outcome}")
    admin.dispose()


if __name__ == "__main__":
    main()
