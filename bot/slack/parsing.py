"""Parse what people type after each of the three slash commands (/incident, /access,
/request-access). Pure; raises InvalidInput with usage.

The text arrives as Slack sends it (entities, and for /incident mentions as markup); words are
split on that text, user text is read with `from_slack` once, so the domain gets plain text.
"""

from dataclasses import dataclass

from bot.domain.access import MAX_REASON, is_request_id
from bot.domain.durations import looks_like_duration, parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.incident import MAX_RESOLUTION, MAX_TITLE, Severity
from bot.domain.text import echo, optional_text, required_text
from bot.slack.blocks.text import escape
from bot.slack.text import from_slack, mentioned_user

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
        title = from_slack(" ".join(rest))
        return OpenIncident(required_text(title, field="title", max_length=MAX_TITLE), severity)
    if verb == "status" and not rest:
        return IncidentStatus()
    if verb == "commander":
        user = mentioned_user(rest[0]) if len(rest) == 1 else None
        if user is None:
            raise InvalidInput("Name the new commander: `/incident commander @user`.")
        return HandOff(user)
    if verb == "close":
        resolution = from_slack(" ".join(rest))
        if not resolution:
            raise InvalidInput("Say how it was resolved: `/incident close <resolution>`.")
        return CloseIncident(
            required_text(resolution, field="resolution", max_length=MAX_RESOLUTION)
        )
    raise InvalidInput(f"`{_echo(from_slack(verb))}` is not an /incident command.")


@dataclass(frozen=True)
class AccessCommand:
    verb: str  # "list", "cancel", "revoke" or "extend"
    request_id: str | None = None
    duration: str | None = None  # extend: by how much
    reason: str | None = None  # extend: why (optional)


def parse_access_command(text: str) -> AccessCommand:
    words = from_slack(text).split()
    if not words:
        return AccessCommand("list")
    verb = words[0].lower()
    if verb in ("cancel", "revoke"):
        if len(words) != 2 or not is_request_id(words[1].upper()):
            raise InvalidInput(f"Name one request: `/access {verb} R-XXXXXXXX`.")
        return AccessCommand(verb, words[1].upper())
    if verb == "extend":
        usage = "Say which access and by how much: `/access extend R-XXXXXXXX 30m [reason]`."
        if len(words) < 3 or not is_request_id(words[1].upper()):
            raise InvalidInput(usage)
        parse_duration(words[2])
        reason = optional_text(" ".join(words[3:]), field="reason", max_length=MAX_REASON)
        return AccessCommand("extend", words[1].upper(), words[2].lower(), reason)
    if verb == "list" and len(words) == 1:
        return AccessCommand("list")
    raise InvalidInput(f"`{_echo(verb)}` is not an /access command.")


def _echo(word: str) -> str:
    """A mistyped word (already read from Slack's format), cleaned, clipped and shown as text."""
    return escape(echo(word, 40))


# -- /request-access ---------------------------------------------------------------------

BREAK_GLASS_FLAGS = (
    "--break-glass",
    "—break-glass",
    "–break-glass",
)  # Slack may turn -- into a dash


def split_break_glass(text: str) -> tuple[str, bool]:
    """Take `--break-glass` out of the command text, wherever it was typed."""
    words = text.split()
    kept = [w for w in words if w.lower() not in BREAK_GLASS_FLAGS]
    return " ".join(kept), len(kept) != len(words)


def parse_request_text(text: str) -> tuple[str, str | None, str]:
    """Split `/request-access <resource> [duration] <reason>` into its three parts.

    The second word is the duration when it looks like one (`looks_like_duration`), and then
    it must parse: `1h30 fix` is refused, never filed for the default duration with the reason
    "1h30 fix". Any other second word starts the reason.
    """
    words = text.split()
    if not words:
        raise InvalidInput("Usage: /request-access <resource> [duration] <reason>")
    resource, rest = words[0], words[1:]
    duration = None
    if rest and looks_like_duration(rest[0]):
        duration, rest = rest[0], rest[1:]
        parse_duration(duration)
    if not rest:
        raise InvalidInput(
            "Say why you need access: /request-access <resource> [duration] <reason>"
        )
    return resource, duration, " ".join(rest)
