"""Approve clicks killed 0-50 ms after their 200: is each decision there after the restart?

    .venv/bin/python -m tests.bench.click_durability_bench [--trials 20]

Real `gatehouse run` processes on a fresh PostgreSQL database, against the Slack and Vault
emulators (tests/fleet.py). Each trial files a request, clicks Approve, kills the bot (SIGKILL)
the trial's delay after the 200 and reads the request before any bot runs again; a bot is then
started for the next trial. At the end every approved request must be issued and its card
updated by the bot running then.

Prints "N of 20 present", and the delay of each click that was lost.
"""

import argparse
import tempfile
import time
from pathlib import Path

from tests.click_durability import play, spread, wait_until_finished
from tests.databases import admin_engine, fresh_postgres_database
from tests.fleet import running_fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    trials = parser.parse_args().trials
    started = time.monotonic()
    admin = admin_engine()
    with (
        fresh_postgres_database(admin) as url,
        tempfile.TemporaryDirectory() as folder,
        running_fleet(url, Path(folder), GATEHOUSE_SWEEP_INTERVAL="1") as fleet,
    ):
        fleet.start()
        channel = fleet.open_incident(fleet.replicas[-1], "click durability bench")
        played = play(fleet, channel, spread(trials))
        present = [trial for trial in played if trial.recorded]
        print(f"{len(present)} of {trials} present")
        for trial in played:
            if not trial.recorded:
                print(f"  lost: killed {trial.delay_ms:.1f} ms after the 200 ({trial.request_id})")
        wait_until_finished(fleet, channel, present)
        took = time.monotonic() - started
        print(f"every present approval issued and shown after the restart ({took:.0f} s)")
    admin.dispose()


if __name__ == "__main__":
    main()
