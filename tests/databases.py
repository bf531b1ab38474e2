"""Throwaway PostgreSQL databases for tests and benchmarks (the server from
GATEHOUSE_TEST_POSTGRES_URL, else the local one with trust auth)."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("GATEHOUSE_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_ADMIN_URL


def admin_engine() -> Engine:
    """An autocommit engine on the server's maintenance database."""
    return create_engine(
        postgres_admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@contextmanager
def fresh_postgres_database(admin: Engine) -> Iterator[str]:
    """A new, empty database's URL; dropped afterwards, whoever is still connected."""
    name = f"gatehouse_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(postgres_admin_url()).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
