"""Where the chat shows each incident and request: the ts of its card, kept beside the record
(the `card_ts` columns) but out of the domain's entities, and the direct messages about each
request (`slack_private_messages`), so they can be redrawn when it moves on."""

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update

from bot.domain.ports import PrivateMessage
from bot.store.tables import access_requests, incidents, slack_private_messages


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

    def private_messages(self, request_id: str) -> Sequence[PrivateMessage]:
        table = slack_private_messages
        statement = (
            select(table)
            .where(table.c.request_id == request_id)
            .order_by(table.c.kind, table.c.user_id)
        )
        return [
            PrivateMessage(
                request_id=row.request_id,
                kind=row.kind,
                user_id=row.user_id,
                channel_id=row.channel_id,
                ts=row.ts,
            )
            for row in self._connection.execute(statement)
        ]

    def keep_private_message(self, message: PrivateMessage) -> None:
        """The latest of its request, kind and user replaces any kept before."""
        table = slack_private_messages
        self._connection.execute(
            delete(table).where(
                table.c.request_id == message.request_id,
                table.c.kind == message.kind,
                table.c.user_id == message.user_id,
            )
        )
        self._connection.execute(
            insert(table).values(
                request_id=message.request_id,
                kind=message.kind,
                user_id=message.user_id,
                channel_id=message.channel_id,
                ts=message.ts,
            )
        )
