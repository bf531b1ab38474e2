"""Incidents: opened by anyone, led by a commander, closed by the commander or a policy admin."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.errors import AlreadyDone, InvalidInput, InvalidState, NotAllowed
from bot.domain.text import required_text
from bot.domain.wording import Person, Wording

MAX_TITLE = 150
MAX_RESOLUTION = 2000


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Incident:
    id: str
    title: str
    severity: Severity
    commander_id: str
    opened_by: str
    opened_at: datetime
    # Empty until its Slack channel is made: the incident is recorded first, so a failure in
    # between leaves an incident to give a channel to, never a channel nobody knows.
    channel_id: str
    channel_name: str
    status: IncidentStatus = IncidentStatus.OPEN
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str | None = None
    summary_pending: bool = False  # closed, and the audit summary not posted yet
    archive_pending: bool = False  # closed, and the channel still to be archived

    @property
    def is_open(self) -> bool:
        return self.status is IncidentStatus.OPEN

    @property
    def closing(self) -> bool:
        """Closed and the close not finished (its summary not posted): the close revokes and
        confirms every grant of the incident, so no other worker asks Vault about them."""
        return not self.is_open and self.summary_pending

    @property
    def has_channel(self) -> bool:
        return bool(self.channel_id)

    def attach_channel(self, *, channel_id: str, channel_name: str) -> None:
        """The Slack channel made for this incident; an incident has one, for good."""
        if self.has_channel:
            raise AlreadyDone(f"Incident {self.id} already has its channel #{self.channel_name}.")
        if not channel_id or not channel_name:
            raise InvalidInput("An incident channel needs an id and a name.")
        self.channel_id = channel_id
        self.channel_name = channel_name

    def require_open(self) -> None:
        if not self.is_open:
            raise InvalidState(f"Incident {self.id} is closed; open a new incident for new work.")

    def hand_off(self, *, to_user: str, by_user: str, is_admin: bool) -> str:
        """Make `to_user` commander; returns the previous commander."""
        self.require_open()
        self.require_commander(by_user, is_admin=is_admin, to="hand off")
        if to_user == self.commander_id:
            raise AlreadyDone(Wording(Person(to_user), " is already the commander."))
        previous = self.commander_id
        self.commander_id = to_user
        return previous

    def require_commander(self, by_user: str, *, is_admin: bool, to: str) -> None:
        """Only the commander or an incident admin runs the incident: hands it off, closes it.
        Also asked before a form for either is shown, so nobody fills one in for nothing."""
        if by_user != self.commander_id and not is_admin:
            raise NotAllowed(
                Wording(
                    "Only the commander ",
                    Person(self.commander_id),
                    f" or an incident admin can {to}.",
                )
            )

    def close(self, *, by_user: str, resolution: str, is_admin: bool, now: datetime) -> None:
        self.require_commander(by_user, is_admin=is_admin, to="close this incident")
        if not self.is_open:
            raise AlreadyDone(f"Incident {self.id} is already closed.")
        self.status = IncidentStatus.CLOSED
        self.closed_at = now
        self.closed_by = by_user
        self.resolution = required_text(resolution, field="resolution", max_length=MAX_RESOLUTION)


def open_incident(
    *,
    incident_id: str,
    title: str,
    severity: Severity,
    opened_by: str,
    now: datetime,
    channel_id: str = "",
    channel_name: str = "",
) -> Incident:
    """A new open incident; the opener is its commander until handed off. Without a channel
    until `attach_channel`."""
    return Incident(
        id=incident_id,
        title=required_text(title, field="title", max_length=MAX_TITLE),
        severity=severity,
        commander_id=opened_by,
        opened_by=opened_by,
        opened_at=now,
        channel_id=channel_id,
        channel_name=channel_name,
    )


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInput(f"'{text}' is not a severity; use one of {choices}.") from None


def new_incident_id(now: datetime, token: str) -> str:
    """`INC-20261123-7F3A2C`: sortable by day, unique by a random token the caller supplies."""
    return f"INC-{now.strftime('%Y%m%d')}-{token.upper()}"
