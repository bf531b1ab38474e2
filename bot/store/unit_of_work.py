"""One database transaction per unit of work, shared by the repositories and the audit log.

Lock order, in every transaction that locks rows of more than one of these: the incident
first (FOR UPDATE to change it, FOR KEY SHARE to hold it open), then its requests, then its
grants, and the audit chain's lock last (it is taken by the first append, so every row a
transaction locks is locked before it records anything). A transaction the database still
aborts as a deadlock victim or a serialization failure is run again by `run`.
"""

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Self, TypeVar

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from bot.store.access_requests import SqlAccessRequestRepository
from bot.store.audit_log import SqlAuditLog
from bot.store.cards import SqlCardRepository
from bot.store.checkpoints import SqlCheckpointRepository
from bot.store.claims import Claim, claims_for
from bot.store.engine import READ_ONLY_OPTION
from bot.store.incidents import SqlIncidentRepository
from bot.store.repositories import SqlGrantRepository
from bot.store.sink_cursors import SqlSinkCursorRepository
from bot.store.vault_tokens import SqlVaultTokenRepository

T = TypeVar("T")
log = structlog.get_logger(__name__)

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected and serialization_failure: the database undid the whole transaction."""
TRANSACTION_ATTEMPTS = 4
FIRST_RETRY_PAUSE_SECONDS = 0.01


def is_retryable(error: DBAPIError) -> bool:
    """True when the database aborted the transaction only because of a concurrent one."""
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_pause(attempt: int, *, jitter: Callable[[], float] = random.random) -> float:
    """Full jitter, doubling: up to 10 ms after the first failure, 20 ms, 40 ms…, so two
    transactions that deadlocked do not meet again at the same moment."""
    return float(FIRST_RETRY_PAUSE_SECONDS * (2 ** (attempt - 1)) * jitter())


class SqlUnitOfWork:
    """`with uow: ...; uow.commit()`. Leaving the block without a commit rolls back.

    A commit ends the transaction; using the repositories again afterwards starts a new one.
    Beyond the domain's ports, the repositories offer the sweep queries (`list_due_pending`,
    `list_due`, `list_by_status`).
    """

    incidents: SqlIncidentRepository
    requests: SqlAccessRequestRepository
    grants: SqlGrantRepository
    audit: SqlAuditLog
    vault_tokens: SqlVaultTokenRepository
    checkpoints: SqlCheckpointRepository
    sink_cursors: SqlSinkCursorRepository
    cards: SqlCardRepository

    def __init__(
        self,
        engine: Engine,
        *,
        read_only: bool = False,
        claims_held_here: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._claims_held_here = claims_held_here
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in use; make a new one")
        connection = self._engine.connect()
        if self._read_only:
            connection.execution_options(**{READ_ONLY_OPTION: True})
        self._connection = connection
        self.incidents = SqlIncidentRepository(connection)
        self.requests = SqlAccessRequestRepository(connection)
        self.grants = SqlGrantRepository(connection, claims_held_here=self._claims_held_here)
        self.audit = SqlAuditLog(connection)
        self.vault_tokens = SqlVaultTokenRepository(connection)
        self.checkpoints = SqlCheckpointRepository(connection)
        self.sink_cursors = SqlSinkCursorRepository(connection)
        self.cards = SqlCardRepository(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._require_connection()
        try:
            connection.rollback()
        finally:
            self.audit.transaction_ended()
            connection.close()
            self._connection = None

    def commit(self) -> None:
        try:
            self._require_connection().commit()
        finally:
            self.audit.transaction_ended()

    def rollback(self) -> None:
        try:
            self._require_connection().rollback()
        finally:
            self.audit.transaction_ended()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._connection


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._claims = claims_for(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, claims_held_here=self._claims.held_here)

    def run(
        self,
        body: Callable[[SqlUnitOfWork], T],
        *,
        attempts: int = TRANSACTION_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Run `body` in one transaction and commit; rerun it whole after a deadlock or a
        serialization failure, up to `attempts` times in all. Any other error, or the last
        failure, reaches the caller with nothing committed."""
        for attempt in range(1, attempts + 1):
            try:
                with self() as tx:
                    result = body(tx)
                    tx.commit()
                    return result
            except DBAPIError as error:
                if attempt == attempts or not is_retryable(error):
                    raise
                log.info(
                    "transaction aborted by a concurrent one; running it again",
                    sqlstate=getattr(error.orig, "sqlstate", None),
                    attempt=attempt,
                )
                sleep(retry_pause(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def claim(self, key: str, *, wait: bool = False) -> AbstractContextManager[Claim]:
        return self._claims.hold(key, wait=wait)

    def reader(self) -> SqlUnitOfWork:
        """A unit of work that only reads (exports, verification): never holds the write lock."""
        return SqlUnitOfWork(self._engine, read_only=True)
