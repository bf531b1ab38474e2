"""Incidents: rows of the `incidents` table to and from the domain's Incident."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, insert, or_, select

from bot.domain.incident import Incident, IncidentStatus, Severity
from bot.store.rows import locked, update_by_id
from bot.store.tables import incidents


class SqlIncidentRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, incident: Incident) -> None:
        self._connection.execute(
            insert(incidents).values(id=incident.id, **_incident_values(incident))
        )

    def get(self, incident_id: str, *, for_update: bool = False) -> Incident | None:
        statement = select(incidents).where(incidents.c.id == incident_id)
        return self._one(locked(statement, for_update))

    def hold(self, incident_id: str) -> Incident | None:
        """FOR KEY SHARE: other holders are not blocked, a close (FOR UPDATE) waits for them.

        Taken first by every transaction that locks a request or a grant of the incident, so
        that the incident row is always locked before its requests and grants.
        """
        statement = select(incidents).where(incidents.c.id == incident_id)
        return self._one(statement.with_for_update(read=True, key_share=True))

    def get_by_channel(self, channel_id: str, *, for_update: bool = False) -> Incident | None:
        if not channel_id:
            return None  # "" is how an incident without its channel yet says so: never a match
        statement = select(incidents).where(incidents.c.channel_id == channel_id)
        return self._one(locked(statement, for_update))

    def save(self, incident: Incident) -> None:
        update_by_id(self._connection, incidents, incident.id, _incident_values(incident))

    def list_open(self) -> Sequence[Incident]:
        statement = (
            select(incidents)
            .where(incidents.c.status == IncidentStatus.OPEN.value)
            .order_by(incidents.c.opened_at, incidents.c.id)
        )
        return [_incident_from_row(row) for row in self._connection.execute(statement)]

    def list_unfinished_opens(self, opened_before: datetime, limit: int) -> Sequence[Incident]:
        """Open incidents opened before `opened_before` still without their channel or card."""
        statement = (
            select(incidents)
            .where(
                (incidents.c.status == IncidentStatus.OPEN.value)
                & or_(incidents.c.channel_id.is_(None), incidents.c.card_ts.is_(None))
                & (incidents.c.opened_at < opened_before)
            )
            .order_by(incidents.c.opened_at, incidents.c.id)
            .limit(limit)
        )
        return [_incident_from_row(row) for row in self._connection.execute(statement)]

    def list_closing(self, limit: int, *, archive_closed_before: datetime) -> Sequence[Incident]:
        """Closed incidents whose summary is still to be posted, or whose channel is still to
        be archived and was closed before `archive_closed_before` (its archive is due)."""
        archive_due = incidents.c.archive_pending & (incidents.c.closed_at <= archive_closed_before)
        statement = (
            select(incidents)
            .where(incidents.c.summary_pending | archive_due)
            .order_by(incidents.c.closed_at, incidents.c.id)
            .limit(limit)
        )
        return [_incident_from_row(row) for row in self._connection.execute(statement)]

    def _one(self, statement: Select[Any]) -> Incident | None:
        row = self._connection.execute(statement).one_or_none()
        return None if row is None else _incident_from_row(row)


def _incident_values(incident: Incident) -> dict[str, Any]:
    return {
        "title": incident.title,
        "severity": incident.severity.value,
        "commander_id": incident.commander_id,
        "opened_by": incident.opened_by,
        "opened_at": incident.opened_at,
        "channel_id": incident.channel_id or None,
        "channel_name": incident.channel_name or None,
        "status": incident.status.value,
        "closed_at": incident.closed_at,
        "closed_by": incident.closed_by,
        "resolution": incident.resolution,
        "summary_pending": incident.summary_pending,
        "archive_pending": incident.archive_pending,
    }


def _incident_from_row(row: Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        title=row.title,
        severity=Severity(row.severity),
        commander_id=row.commander_id,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        channel_id=row.channel_id or "",
        channel_name=row.channel_name or "",
        status=IncidentStatus(row.status),
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        resolution=row.resolution,
        summary_pending=row.summary_pending,
        archive_pending=row.archive_pending,
    )
