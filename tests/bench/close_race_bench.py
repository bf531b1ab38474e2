"""The close race, many rounds: six approvals in flight on PostgreSQL, close sent 0-120 ms after.

    .venv/bin/python -m tests.bench.close_race_bench [--rounds 20] [--seed 1]

Prints how many rounds the close won (it succeeded, and every credential issued is revoked and
reported in its summary), and what each lost round left behind.
"""

import argparse
import time

from bot.store import migrate
from tests.close_race import play
from tests.databases import admin_engine, fresh_postgres_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    admin = admin_engine()
    with fresh_postgres_database(admin) as url:
        migrate.upgrade(url)
        started = time.monotonic()
        rounds = play(url, args.rounds, seed=args.seed)
        seconds = time.monotonic() - started
    admin.dispose()
    for number, played in enumerate(rounds):
        if not played.won:
            print(f"round {number}: {played.describe()}")
    issued = sum(len(played.issued) for played in rounds)
    late = sum(played.issued_after_close for played in rounds)
    won = sum(played.won for played in rounds)
    print(
        f"close won {won}/{len(rounds)} rounds in {seconds:.1f} s; "
        f"{issued} credentials issued ({late} after the close committed), "
        f"all revoked and reported: {won == len(rounds)}"
    )


if __name__ == "__main__":
    main()
