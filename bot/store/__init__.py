"""Persistence: SQLAlchemy Core tables, repositories and the unit of work (SQLite, PostgreSQL)."""

from bot.store.access_requests import SqlAccessRequestRepository
from bot.store.audit_log import SqlAuditLog
from bot.store.engine import create_engine_for
from bot.store.incidents import SqlIncidentRepository
from bot.store.repositories import SqlGrantRepository
from bot.store.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "SqlAccessRequestRepository",
    "SqlAuditLog",
    "SqlGrantRepository",
    "SqlIncidentRepository",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "create_engine_for",
]
