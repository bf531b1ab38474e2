"""Slack requests already accepted, shared by every replica (table slack_request_keys).

A key is inserted with ON CONFLICT DO NOTHING: the database's primary key decides which replica
saw it first, so two replicas never both accept the same signature or event.
"""

import hashlib
import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.tables import slack_request_keys

# Longer than the signature window (five minutes either side of our clock) and than Slack's
# last Events API retry (about five minutes after the first attempt).
KEEP_FOR = timedelta(minutes=15)
SWEEP_EVERY = timedelta(minutes=1)


class SqlSeenRequests:
    """`first_sighting(key, now)` is True once per key across all replicas within KEEP_FOR."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._lock = threading.Lock()
        self._last_sweep: datetime | None = None

    def first_sighting(self, key: str, now: datetime) -> bool:
        digest = hashlib.sha256(key.encode()).hexdigest()
        statement = (
            self._dialect.insert(slack_request_keys)
            .values(key=digest, seen_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(slack_request_keys.c.key)
        )
        with self._engine.begin() as connection:
            inserted = connection.execute(statement).first() is not None
        self._sweep_if_due(now)
        return inserted

    def _sweep_if_due(self, now: datetime) -> None:
        """Delete keys older than KEEP_FOR, at most once a minute per process: cheap enough to
        run on the request path, and the table stays as small as a quarter hour of traffic."""
        with self._lock:
            if self._last_sweep is not None and now - self._last_sweep < SWEEP_EVERY:
                return
            self._last_sweep = now
        with self._engine.begin() as connection:
            connection.execute(
                delete(slack_request_keys).where(slack_request_keys.c.seen_at < now - KEEP_FOR)
            )
