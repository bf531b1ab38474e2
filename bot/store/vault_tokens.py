"""Accessors of incident tokens: written before a token is used, revoked at close."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from bot.domain.incident import IncidentStatus
from bot.store.tables import incidents, vault_tokens


class SqlVaultTokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, *, incident_id: str, accessor: str, now: datetime) -> None:
        self._connection.execute(
            insert(vault_tokens).values(accessor=accessor, incident_id=incident_id, created_at=now)
        )

    def list_unrevoked(self, incident_id: str | None = None) -> Sequence[tuple[str, str]]:
        """(incident id, accessor) of every token not yet confirmed revoked."""
        statement = select(vault_tokens.c.incident_id, vault_tokens.c.accessor).where(
            vault_tokens.c.revoked_at.is_(None)
        )
        if incident_id is not None:
            statement = statement.where(vault_tokens.c.incident_id == incident_id)
        rows = self._connection.execute(statement.order_by(vault_tokens.c.created_at))
        return [(row.incident_id, row.accessor) for row in rows]

    def list_closed_incidents_with_unrevoked(self, limit: int) -> Sequence[str]:
        """Ids of closed incidents that still have a token not confirmed revoked, the one with
        the oldest such token first."""
        statement = (
            select(vault_tokens.c.incident_id)
            .join(incidents, incidents.c.id == vault_tokens.c.incident_id)
            .where(
                vault_tokens.c.revoked_at.is_(None),
                incidents.c.status != IncidentStatus.OPEN.value,
            )
            .group_by(vault_tokens.c.incident_id)
            .order_by(func.min(vault_tokens.c.created_at), vault_tokens.c.incident_id)
            .limit(limit)
        )
        return list(self._connection.execute(statement).scalars())

    def mark_revoked(self, accessors: Sequence[str], *, at: datetime) -> None:
        if accessors:
            self._connection.execute(
                update(vault_tokens)
                .where(vault_tokens.c.accessor.in_(list(accessors)))
                .values(revoked_at=at)
            )
