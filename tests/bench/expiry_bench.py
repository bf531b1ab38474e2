"""Expiry lag: grants ending within the same window, revoked by the bot on time.

    .venv/bin/python -m tests.bench.expiry_bench [--grants 1000] [--window 60] [--replicas 1]
        [--kill] [--database postgresql|sqlite]

`gatehouse run` replicas in HTTP mode against the Slack and Vault emulators; grants are
requested and approved through Slack, with durations chosen so that their ends spread over
the window. The lag is Vault's revocation time (the emulator's record of the bot's revoke
call) minus the grant's end. `--replicas 3 --kill --grants 300 --window 10` is the full-size
replicas run: one replica is killed in the middle, and every grant must still be revoked once.
Prints figures only.
"""

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from tests.databases import admin_engine, fresh_postgres_database
from tests.expiries import run_expiries
from tests.fleet import running_fleet


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = admin_engine()
    try:
        with fresh_postgres_database(admin) as url:
            yield url
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds the ends spread over")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--kill", action="store_true", help="kill a replica mid-window")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds to issue them all (default: estimated)"
    )
    args = parser.parse_args()
    if args.kill and args.replicas < 2:
        parser.error("--kill needs at least two replicas")
    lead = args.lead if args.lead is not None else 15 + args.grants * 0.3
    with (
        tempfile.TemporaryDirectory() as folder,
        database(args.database, Path(folder)) as url,
        running_fleet(url, Path(folder), GATEHOUSE_SWEEP_INTERVAL="5") as fleet,
    ):
        replicas = fleet.start(args.replicas)
        print(
            f"{args.replicas} replica(s) on {args.database}: issuing {args.grants} grants, "
            f"their ends spread over {args.window:.0f} s starting in {lead:.0f} s",
            flush=True,
        )
        run = run_expiries(
            fleet,
            replicas,
            count=args.grants,
            window=timedelta(seconds=args.window),
            lead=timedelta(seconds=lead),
            kill=replicas[1] if args.kill else None,
        )
        print(run.report())
        print(f"missed: {len(run.missed())}, revoked twice: {len(run.revoked_twice())}")


if __name__ == "__main__":
    main()
