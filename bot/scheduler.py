"""APScheduler only triggers the periodic work; the database decides what is due.

Built when the bot starts, never at import. No shared job store: every replica runs the same
jobs and the sweeps' row locks (SKIP LOCKED on PostgreSQL) keep them from doing an item twice.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

from integrations.metrics import SWEEP_DURATION, SWEEP_ITEMS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], object]
    every_seconds: float


def build_scheduler(jobs: Sequence[Job]) -> BackgroundScheduler:
    """A scheduler with each job on its interval: one run at a time, missed runs coalesced."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            _logged(job),
            "interval",
            seconds=job.every_seconds,
            id=job.name,
            name=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(job.every_seconds)),
        )
    return scheduler


def _logged(job: Job) -> Callable[[], None]:
    def run() -> None:
        with SWEEP_DURATION.labels(job.name).time():
            try:
                handled = job.run()
            except Exception:  # the next run tries again
                log.exception("job %s failed", job.name)
                return
        if isinstance(handled, int):
            SWEEP_ITEMS.labels(job.name).inc(handled)

    return run
