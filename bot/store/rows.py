"""Row helpers the repositories share: row locks, unique inserts, updates by id."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Executable, Select, Table, update
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import AlreadyDone, NotFound
from bot.store.integrity import violates


def locked(statement: Select[Any], for_update: bool) -> Select[Any]:
    return statement.with_for_update() if for_update else statement


def insert_unique(
    connection: Connection, statement: Executable, *, constraint: str, duplicate: str
) -> None:
    """Insert under a savepoint, so a duplicate leaves the surrounding transaction usable."""
    try:
        with connection.begin_nested():
            connection.execute(statement)
    except IntegrityError as error:
        if violates(error, constraint):
            raise AlreadyDone(duplicate) from error
        raise


def update_by_id(
    connection: Connection, table: Table, row_id: str, values: Mapping[str, Any]
) -> None:
    result = connection.execute(update(table).where(table.c.id == row_id).values(values))
    if result.rowcount != 1:
        raise NotFound(f"Cannot save {table.name} {row_id}: it was never added.")
