"""Parse what people type after a slash command. Pure; raises InvalidInput with usage."""

import re
from dataclasses import dataclass

from bot.domain.access import MAX_REASON
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.incident import MAX_RESOLUTION, MAX_TITLE, Severity, clean_text

# Slack escapes mentions in command text as <@U123|name> (or <@U123>); a bare id is taken too.
_MENTION = re.compile(r"^(?:<@([UW][A-Z0-9]{1,31})(?:\|[^>]*)?>|([UW][A-Z0-9]{1,31}))$")
_SEVERITIES = {s.value for s in Severity}


@dataclass(frozen=True)
class OpenIncident:
    title: str | None  # None: ask with a form
    severity: Severity


@dataclass(frozen=True)
class IncidentStatus:
    pass


@dataclass(frozen=True)
class HandOff:
    to_user: str


@dataclass(frozen=True)
class CloseIncident:
    resolution: str


IncidentCommand = OpenIncident | IncidentStatus | HandOff | CloseIncident


def parse_incident_command(text: str) -> IncidentCommand:
    words = text.split()
    if not words:
        return OpenIncident(title=None, severity=Severity.SEV2)
    verb, rest = words[0].lower(), words[1:]
    if verb == "open":
        severity = Severity.SEV2
        if rest and rest[-1].lower() in _SEVERITIES:
            severity, rest = Severity(rest[-1].lower()), rest[:-1]
        if not rest:
            return OpenIncident(title=None, severity=severity)
        return OpenIncident(
            clean_text(" ".join(rest), field="title", max_length=MAX_TITLE), severity
        )
    if verb == "status" and not rest:
        return IncidentStatus()
    if verb == "commander":
        match = _MENTION.match(rest[0]) if len(rest) == 1 else None
        if match is None:
            raise InvalidInput("Name the new commander: `/incident commander @user`.")
        return HandOff(match.group(1) or match.group(2))
    if verb == "close":
        resolution = " ".join(rest)
        if not resolution:
            raise InvalidInput("Say how it was resolved: `/incident close <resolution>`.")
        return CloseIncident(clean_text(resolution, field="resolution", max_length=MAX_RESOLUTION))
    raise InvalidInput(f"`{verb[:40]}` is not an /incident command.")


@dataclass(frozen=True)
class AccessCommand:
    verb: str  # "list", "cancel", "revoke" or "extend"
    request_id: str | None = None
    duration: str | None = None  # extend: by how much
    reason: str | None = None  # extend: why (optional)


_REQUEST_ID = re.compile(r"^R-[A-Z2-7]{8}$")


def parse_access_command(text: str) -> AccessCommand:
    words = text.split()
    if not words:
        return AccessCommand("list")
    verb = words[0].lower()
    if verb in ("cancel", "revoke"):
        if len(words) != 2 or not _REQUEST_ID.match(words[1].upper()):
            raise InvalidInput(f"Name one request: `/access {verb} R-XXXXXXXX`.")
        return AccessCommand(verb, words[1].upper())
    if verb == "extend":
        usage = "Say which access and by how much: `/access extend R-XXXXXXXX 30m [reason]`."
        if len(words) < 3 or not _REQUEST_ID.match(words[1].upper()):
            raise InvalidInput(usage)
        parse_duration(words[2])
        reason = " ".join(words[3:]) or None
        if reason is not None:
            reason = clean_text(reason, field="reason", max_length=MAX_REASON)
        return AccessCommand("extend", words[1].upper(), words[2].lower(), reason)
    if verb == "list" and len(words) == 1:
        return AccessCommand("list")
    raise InvalidInput(f"`{verb[:40]}` is not an /access command.")
