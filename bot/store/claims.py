"""Claims: a worker's exclusive hold on outside work (a Vault call, the Slack messages after a
change) for as long as it runs, across threads and replicas.

A claim dies with its holder. On PostgreSQL it is a session advisory lock taken on a connection
of its own, checked out of a pool kept for claims and held until the claim is given back; the
server drops the lock when that connection or the process dies, even by SIGKILL. On SQLite (one
process) it lives in this process only. So a claim that can be taken means nobody is doing that
work now: whatever it left half done may be finished by whoever takes it.

Which claims are held can also be asked in SQL (`unclaimed`), so that a sweep selects only the
work nobody holds: the lock number is the first eight bytes of the key's SHA-256, which
PostgreSQL computes as well as Python, and pg_locks shows every replica's advisory locks.

A lock that vanished with its connection is never taken again behind the holder's back: the
holder asks `ensure_held` before each call out, and learns of the loss as `ClaimLost` instead
of carrying on while another worker may already be doing the same work.
"""

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    and_,
    cast,
    column,
    create_engine,
    exists,
    func,
    literal,
    literal_column,
    not_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.exc import SQLAlchemyError

from bot.domain.errors import ClaimLost

WAIT_STEP_SECONDS = 0.02
WAIT_LIMIT_SECONDS = 120.0
CLAIM_POOL_SIZE = 5
CLAIM_POOL_OVERFLOW = 50
"""Claims have a pool of their own, so that workers holding claims never starve each other of
the connections their transactions need."""

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_STILL_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND granted AND objsubid = 1"
    " AND classid::bigint = :high AND objid::bigint = :low)"
)


class Claim:
    """What `hold` yields: true while held. `ensure_held` raises ClaimLost unless the claim is
    held right now (a refused claim, one given back, or one whose connection was lost)."""

    def __init__(self, key: str, *, held: bool, alive: Callable[[], bool] | None = None) -> None:
        self.key = key
        self._held = held
        self._alive = alive

    def __bool__(self) -> bool:
        return self._held

    def ensure_held(self) -> None:
        if not self._held:
            raise ClaimLost(
                f"Another worker is still busy with {self.key}; nothing more was done here."
                " Try again in a moment."
            )
        if self._alive is not None and not self._alive():
            self._held = False
            raise ClaimLost(
                f"The hold on {self.key} was lost with its database connection; the work"
                " stopped before its next step and will be finished by a sweep."
            )

    def give_back(self) -> None:
        self._held = False


class LocalClaims:
    """Claims among the threads of this process."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str, *, wait: bool = False) -> Iterator[Claim]:
        """Yield a held Claim while `key` is held here; a refused (false) one when another
        worker holds it, after waiting up to WAIT_LIMIT_SECONDS if `wait`."""
        claim = self._take(key)
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while wait and claim is None and time.monotonic() < deadline:
            time.sleep(WAIT_STEP_SECONDS)
            claim = self._take(key)
        if claim is None:
            yield Claim(key, held=False)
            return
        try:
            yield claim
        finally:
            claim.give_back()
            self._give_back(claim)

    def held_here(self) -> frozenset[str]:
        """The keys this process holds now (on SQLite, every claim there is)."""
        with self._lock:
            return frozenset(self._held)

    def _take(self, key: str) -> Claim | None:
        with self._lock:
            if key in self._held:
                return None
            self._held.add(key)
        try:
            claim = self._take_elsewhere(key)
        except BaseException:
            self._forget(key)
            raise
        if claim is None:
            self._forget(key)
        return claim

    def _give_back(self, claim: Claim) -> None:
        try:
            self._give_back_elsewhere(claim)
        finally:
            self._forget(claim.key)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._held.discard(key)

    def _take_elsewhere(self, key: str) -> Claim | None:
        return Claim(key, held=True)

    def _give_back_elsewhere(self, claim: Claim) -> None:
        return


class _AdvisoryClaim(Claim):
    """A claim whose advisory lock lives on `connection`, checked out for the claim's life."""

    def __init__(self, key: str, connection: Connection) -> None:
        super().__init__(key, held=True, alive=self._lock_is_held)
        self.connection = connection

    def _lock_is_held(self) -> bool:
        high, low = _lock_halves(_lock_number(self.key))
        try:
            return bool(self.connection.execute(_STILL_HELD, {"high": high, "low": low}).scalar())
        except SQLAlchemyError:
            return False


class PostgresClaims(LocalClaims):
    """Claims among replicas: advisory locks on the claim's own autocommit connection.

    A claim takes two locks: its number (`_lock_number`, which SQL computes too) and the number
    the previous release gave the same key (`_previous_lock_number`), so that replicas of that
    release, still serving during a rolling upgrade, are kept out of the same work as before.

    The threads of this process are kept apart by LocalClaims first (a second lock for the same
    key would go to another connection and be refused anyway); the lock on the server keeps
    other processes out.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = create_engine(
            engine.url,
            pool_pre_ping=True,
            pool_size=CLAIM_POOL_SIZE,
            max_overflow=CLAIM_POOL_OVERFLOW,
        )

    def _take_elsewhere(self, key: str) -> Claim | None:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(_TRY_LOCK, {"key": _lock_number(key)}).scalar()
            if (
                taken
                and not connection.execute(_TRY_LOCK, {"key": _previous_lock_number(key)}).scalar()
            ):
                connection.execute(_UNLOCK, {"key": _lock_number(key)})
                taken = False
        except BaseException:
            _discard(connection)
            raise
        if not taken:
            connection.close()
            return None
        return _AdvisoryClaim(key, connection)

    def _give_back_elsewhere(self, claim: Claim) -> None:
        if not isinstance(claim, _AdvisoryClaim):
            return
        if claim.connection.invalidated:
            _discard(claim.connection)
            return
        try:
            for number in (_previous_lock_number(claim.key), _lock_number(claim.key)):
                claim.connection.execute(_UNLOCK, {"key": number})
        except SQLAlchemyError:
            _discard(claim.connection)  # gone with its connection: the server dropped the lock
            return
        claim.connection.close()

    def close(self) -> None:
        """Close the claims' pool (claims still held keep their connections until given back)."""
        self._engine.dispose(close=False)


def _discard(connection: Connection) -> None:
    """Never give a broken connection back to the pool."""
    connection.invalidate()
    connection.close()


def _lock_number(key: str) -> int:
    """A signed 64-bit advisory lock number for `key`: the first eight bytes of its SHA-256,
    as `_sql_lock_number` computes it in PostgreSQL."""
    digest = hashlib.sha256(key.encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


def _previous_lock_number(key: str) -> int:
    """The number the previous release locked for `key` (BLAKE2b, which PostgreSQL lacks)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_PG_LOCKS = table(
    "pg_locks",
    column("locktype"),
    column("database"),
    column("classid"),
    column("objid"),
    column("objsubid"),
    column("granted"),
)
_PG_DATABASE = table("pg_database", column("oid"), column("datname"))


def _sql_lock_number(key: ColumnElement[str]) -> ColumnElement[int]:
    """`_lock_number` in PostgreSQL: 16 hex digits of the SHA-256, read as a signed bigint."""
    digest = func.encode(func.sha256(func.convert_to(key, literal("UTF8"))), literal("hex"))
    return cast(cast(literal("x") + func.left(digest, 16), BIT(64)), BigInteger)


def unclaimed(
    key: ColumnElement[str], *, postgres: bool, held_here: frozenset[str]
) -> ColumnElement[bool]:
    """A SQL condition true when nobody holds the claim named `key` (a SQL expression): not
    this process (`held_here`, `LocalClaims.held_here`) and, on PostgreSQL, no session of this
    database holding its advisory lock (pg_locks, every replica's claims)."""
    free_here = key.not_in(sorted(held_here)) if held_here else true()
    if not postgres:
        return free_here
    this_database = (
        select(_PG_DATABASE.c.oid)
        .where(_PG_DATABASE.c.datname == func.current_database())
        .scalar_subquery()
    )
    number = (
        cast(_PG_LOCKS.c.classid, BigInteger)
        .op("<<")(literal_column("32"))
        .op("|")(cast(_PG_LOCKS.c.objid, BigInteger))
    )
    held_anywhere = exists().where(
        _PG_LOCKS.c.locktype == "advisory",
        _PG_LOCKS.c.database == this_database,
        _PG_LOCKS.c.objsubid == 1,
        _PG_LOCKS.c.granted.is_(True),
        number == _sql_lock_number(key),
    )
    return and_(free_here, not_(held_anywhere))


def _lock_halves(number: int) -> tuple[int, int]:
    """The (classid, objid) pair pg_locks shows for a bigint advisory lock."""
    unsigned = number & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def claims_for(engine: Engine) -> LocalClaims:
    return PostgresClaims(engine) if engine.dialect.name == "postgresql" else LocalClaims()
