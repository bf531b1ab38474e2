"""Where the chat shows each incident and request: the ts of its card, kept beside the record
(the `card_ts` columns) but out of the domain's entities."""

from sqlalchemy import Connection, select, update

from bot.store.tables import access_requests, incidents


class SqlCardRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def of_request(self, request_id: str) -> str | None:
        statement = select(access_requests.c.card_ts).where(access_requests.c.id == request_id)
        return self._connection.execute(statement).scalar()

    def of_incident(self, incident_id: str) -> str | None:
        statement = select(incidents.c.card_ts).where(incidents.c.id == incident_id)
        return self._connection.execute(statement).scalar()

    def attach_to_request(self, request_id: str, ts: str) -> None:
        self._connection.execute(
            update(access_requests).where(access_requests.c.id == request_id).values(card_ts=ts)
        )

    def attach_to_incident(self, incident_id: str, ts: str) -> None:
        self._connection.execute(
            update(incidents).where(incidents.c.id == incident_id).values(card_ts=ts)
        )
