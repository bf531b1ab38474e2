"""Claims: a worker's exclusive hold on outside work (a Vault call, the Slack messages after a
change) for as long as it runs, across threads and replicas.

A claim dies with its holder. On PostgreSQL it is a session advisory lock on one connection per
process, which the server drops when the process dies, even by SIGKILL; on SQLite (one process)
it lives in this process only. So a claim that can be taken means nobody is doing that work now:
whatever it left half done may be finished by whoever takes it.
"""

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

WAIT_STEP_SECONDS = 0.02
WAIT_LIMIT_SECONDS = 120.0


class LocalClaims:
    """Claims among the threads of this process."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str, *, wait: bool = False) -> Iterator[bool]:
        """Yield True while `key` is held here; False when another worker holds it (after
        waiting up to WAIT_LIMIT_SECONDS if `wait`)."""
        taken = self._take(key)
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while wait and not taken and time.monotonic() < deadline:
            time.sleep(WAIT_STEP_SECONDS)
            taken = self._take(key)
        try:
            yield taken
        finally:
            if taken:
                self._give_back(key)

    def _take(self, key: str) -> bool:
        with self._lock:
            if key in self._held or not self._take_elsewhere(key):
                return False
            self._held.add(key)
            return True

    def _give_back(self, key: str) -> None:
        with self._lock:
            self._held.discard(key)
            self._give_back_elsewhere(key)

    def _take_elsewhere(self, key: str) -> bool:
        return True

    def _give_back_elsewhere(self, key: str) -> None:
        return


class PostgresClaims(LocalClaims):
    """Claims among replicas: advisory locks on one autocommit connection of this process.

    Advisory locks are re-entrant within a session, so the threads of this process are kept
    apart by LocalClaims first; the lock on the server keeps other processes out.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine
        self._connection: Connection | None = None

    def _take_elsewhere(self, key: str) -> bool:
        return bool(self._execute("SELECT pg_try_advisory_lock(:key)", key))

    def _give_back_elsewhere(self, key: str) -> None:
        self._execute("SELECT pg_advisory_unlock(:key)", key)

    def _execute(self, statement: str, key: str) -> object:
        try:
            return self._run(statement, key)
        except DBAPIError:
            self.close()  # the server dropped this connection (a restart): open another
            return self._run(statement, key)

    def _run(self, statement: str, key: str) -> object:
        return self._open().execute(text(statement), {"key": _lock_number(key)}).scalar()

    def _open(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except DBAPIError:
                connection.invalidate()


def _lock_number(key: str) -> int:
    """A signed 64-bit advisory lock number for `key`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def claims_for(engine: Engine) -> LocalClaims:
    return PostgresClaims(engine) if engine.dialect.name == "postgresql" else LocalClaims()
