"""The hand-written migration builds exactly the schema of bot.store.tables, and undoes it."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.store import create_engine_for, migrate
from bot.store.tables import metadata


def _differences(url: str) -> list[object]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _append_only_function_exists(url: str) -> bool:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_events_refuse_change'")
            ).scalar_one()
            return bool(found)
    finally:
        engine.dispose()


def test_upgrade_builds_what_the_tables_module_describes(database_url: str) -> None:
    assert migrate.current_revision(database_url) is None

    migrate.upgrade(database_url)

    assert migrate.current_revision(database_url) == migrate.head_revision()
    assert _tables(database_url) == set(metadata.tables) | {"alembic_version"}
    assert _differences(database_url) == []


def test_downgrade_to_base_leaves_nothing_and_upgrade_works_again(database_url: str) -> None:
    migrate.upgrade(database_url)

    migrate.downgrade(database_url, "base")

    assert _tables(database_url) == {"alembic_version"}
    assert migrate.current_revision(database_url) is None
    if database_url.startswith("postgresql"):
        assert not _append_only_function_exists(database_url)

    migrate.upgrade(database_url)

    assert migrate.current_revision(database_url) == migrate.head_revision()
    assert _differences(database_url) == []
    if database_url.startswith("postgresql"):
        assert _append_only_function_exists(database_url)


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)

    assert migrate.current_revision(database_url) == migrate.head_revision()
