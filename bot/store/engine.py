"""Engines for the two databases Gatehouse runs on: SQLite (one process) and PostgreSQL."""

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "gatehouse_read_only"
"""Execution option of a connection that only reads: on SQLite it takes no write lock."""


def normalize_url(url: str) -> URL:
    """Pin PostgreSQL to psycopg 3 whatever driver (or none) the URL names."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(
            f"Unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite:///file.db or postgresql://user@host/dbname"
        )
    return parsed


def create_engine_for(url: str) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys, WAL with NORMAL sync, a long busy timeout, and BEGIN IMMEDIATE for every
    transaction.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's `begin` event
    emits the BEGIN. IMMEDIATE takes the write lock up front, so a transaction that reads and
    then writes (the audit append) waits its turn instead of failing with "database is locked".
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Switching the mode takes a lock that busy_timeout does not wait for: a connection
            # opened while another writes would fail "database is locked". The mode is stored
            # in the file, so once it is WAL there is nothing to switch.
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives
            # the process being killed (what an acknowledged click relies on), and only a power
            # cut or an OS crash may take the last commits back. FULL would cost an fsync,
            # milliseconds, on every transaction of every click.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")  # readers never block the bot's writers (WAL)
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
