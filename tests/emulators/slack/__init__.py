"""A Slack emulator for tests: the real slack_sdk WebClient talks to it over HTTP.

Web API (`/api/<method>`): the bearer token is checked; every call's arguments are validated
against Slack's own method JSON (`tests/specs/slack/methods/`) and Block Kit limits;
stateful models of conversations.*, chat.*, pins.*, views.*, users.*, usergroups.* and the
external file upload flow answer with Slack's shapes and error codes; other real methods answer
`{"ok": true}` and are listed by `unmodelled_calls()`. 429s on demand (`rate_limit_next`) or
by Slack's tiers (`enforce_rate_limits=True`); an outage of the whole Web API, 429 or 5xx on
every call, for a while or until ended (`start_outage`, `end_outage`). Inbound: `SlackClient`
sends slash commands, block actions, view submissions and events signed as Slack signs them,
with trigger_ids and response_urls the emulator honours.
"""

from .client import InboundResult, SendOptions, SlackClient
from .emulator import RecordedCall, SlackEmulator, running_slack
from .signing import signature, signed_headers

__all__ = [
    "InboundResult",
    "RecordedCall",
    "SendOptions",
    "SlackClient",
    "SlackEmulator",
    "running_slack",
    "signature",
    "signed_headers",
]
