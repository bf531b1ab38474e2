"""APScheduler only triggers the periodic work; the database decides what is due.

Built when the bot starts, never at import. No shared job store: every replica runs the same
jobs and the sweeps' row locks (SKIP LOCKED on PostgreSQL) keep them from doing an item twice.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot.metrics import SWEEP_DURATION, SWEEP_ITEMS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], object]
    every_seconds: float


def build_scheduler(jobs: Sequence[Job] = ()) -> BackgroundScheduler:
    """A scheduler with each job on its interval (see `add_jobs`)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, jobs)
    return scheduler


def add_jobs(scheduler: BackgroundScheduler, jobs: Sequence[Job]) -> None:
    """Each job on its interval, the first run as soon as the scheduler starts (what a stopped
    process left is finished at once): one run at a time, missed runs coalesced."""
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
            next_run_time=datetime.now(UTC),
        )


class ExpiryTimers:
    """An APScheduler `date` job at each grant's end, so access ends on time, not at the next
    sweep. A timer only triggers the expiry: the database decides whether the grant is due,
    so a timer that fires early (the grant was extended) does nothing, and replicas whose
    timers fire together expire it once."""

    def __init__(self, scheduler: BackgroundScheduler, expire: Callable[[str], object]) -> None:
        self._scheduler = scheduler
        self._expire = expire

    def schedule_expiry(self, request_id: str, at: datetime) -> None:
        """Expire `request_id` at `at` (at once if that has passed), replacing its timer."""
        job_id = f"expire:{request_id}"
        armed = self._scheduler.get_job(job_id)
        if armed is not None and getattr(armed, "next_run_time", None) == at:
            return  # the sweeps re-arm what ends soon: most are armed already
        self._scheduler.add_job(
            self._run,
            "date",
            run_date=at,
            args=[request_id],
            id=job_id,
            name=f"expire {request_id}",
            replace_existing=True,
            misfire_grace_time=None,  # late is better than never; the sweep would be later
        )

    def _run(self, request_id: str) -> None:
        try:
            self._expire(request_id)
        except Exception:  # the sweep expires it instead
            log.exception("expiry timer of %s failed", request_id)


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
