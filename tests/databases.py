"""Throwaway PostgreSQL databases for tests and benchmarks (the server from
GATEHOUSE_TEST_POSTGRES_URL, else the local one with trust auth)."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def many_connections(lane: int) -> pytest.MarkDecorator:
    """For tests that run several processes (replicas, racers) on one PostgreSQL: those of one
    lane run one after another on one xdist worker (`--dist loadgroup`), so that at most two
    run at once. Three at once can need more than a default server's 100 connections, and
    would fail for that alone."""
    assert lane in (1, 2)
    return pytest.mark.xdist_group(f"many-postgres-connections-{lane}")


def postgres_admin_url() -> str:
    return os.environ.get("GATEHOUSE_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_ADMIN_URL


def admin_engine() -> Engine:
    """An autocommit engine on the server's maintenance database."""
    return create_engine(
        postgres_admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@contextmanager
def fresh_postgres_database(admin: Engine, *, template: str | None = None) -> Iterator[str]:
    """A new database's URL, empty or a copy of `template` (a database nobody is connected
    to); dropped afterwards, whoever is still connected."""
    name = f"gatehouse_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        url = make_url(postgres_admin_url()).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def bench_database(kind: str, folder: Path) -> Iterator[str]:
    """For a benchmark's `--database`: a SQLite file in `folder`, or ("postgres") a throwaway
    PostgreSQL database, dropped afterwards."""
    if kind != "postgres":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = admin_engine()
    try:
        with fresh_postgres_database(admin) as url:
            yield url
    finally:
        admin.dispose()


def database_name(url: str) -> str:
    name = make_url(url).database
    assert name, url
    return name
