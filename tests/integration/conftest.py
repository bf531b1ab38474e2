"""Fixtures: every store test runs on a SQLite file and on a fresh PostgreSQL database."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from tests.databases import (
    admin_engine,
    database_name,
    fresh_postgres_database,
    postgres_admin_url,
)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An autocommit engine on the server's maintenance database, to create and drop databases.

    An unreachable server skips the PostgreSQL tests on a laptop and fails them in CI.
    """
    url = postgres_admin_url()
    engine = admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        cause = str(error.orig).splitlines()[0]
        reason = (
            f"PostgreSQL is not reachable at {shown} ({cause}); start it or point "
            "GATEHOUSE_TEST_POSTGRES_URL at a server where the user may create databases"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the latest revision once per test process: each test that
    wants a migrated database gets a copy (running every migration costs about half a second)."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_admin: Engine) -> Iterator[str]:
    """As `migrated_sqlite`, on PostgreSQL: a database migrated once, nobody connected to it,
    that tests' databases are created from (`CREATE DATABASE … TEMPLATE`)."""
    with fresh_postgres_database(postgres_admin) as url:
        migrate.upgrade(url)
        yield database_name(url)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'gatehouse.db'}"
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    with fresh_postgres_database(admin) as url:
        yield url


@pytest.fixture
def engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[Engine]:
    """The database of `database_url`, at the latest revision: a copy of one migrated once
    per test process (the migrations themselves are tested on empty databases)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        shutil.copyfile(
            request.getfixturevalue("migrated_sqlite"), make_url(database_url).database or ""
        )
    else:
        admin: Engine = request.getfixturevalue("postgres_admin")
        template: str = request.getfixturevalue("migrated_postgres")
        name = database_name(database_url)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    with _engine(database_url) as engine:
        yield engine


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)


@pytest.fixture
def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture(scope="module")
def postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for a module's bot processes, dropped afterwards."""
    with fresh_postgres_database(postgres_admin) as url:
        yield url


@pytest.fixture
def postgres_engine(postgres_admin: Engine, migrated_postgres: str) -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database, for what only PostgreSQL does."""
    with (
        fresh_postgres_database(postgres_admin, template=migrated_postgres) as url,
        _engine(url) as engine,
    ):
        yield engine


# The Vault emulator, an ML database on real PostgreSQL, and Vault set up by setup.sh.
from tests.integration.vault_support import ml_database, set_up_vault, vault  # noqa: E402, F401
