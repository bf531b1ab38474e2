"""Tell which unique constraint an IntegrityError broke, on SQLite and on PostgreSQL."""

from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError

from bot.store.tables import metadata


def violates(error: IntegrityError, constraint_name: str) -> bool:
    """True when `error` is a duplicate on the named unique constraint, and nothing else."""
    driver_error: Any = error.orig
    diag = getattr(driver_error, "diag", None)
    if diag is not None:
        return bool(diag.constraint_name == constraint_name)
    return str(driver_error) == f"UNIQUE constraint failed: {_sqlite_columns(constraint_name)}"


def _sqlite_columns(constraint_name: str) -> str:
    """SQLite names the columns, not the constraint or unique index, in its message."""
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.name == constraint_name:
                return ", ".join(f"{table.name}.{column.name}" for column in constraint.columns)
        for index in table.indexes:
            if index.unique and index.name == constraint_name:
                return ", ".join(f"{table.name}.{column.name}" for column in index.columns)
    raise KeyError(f"no unique constraint or index named {constraint_name!r}")
