"""The one place that turns errors into what the user sees (always ephemeral)."""

import difflib
import logging

from bot.domain.errors import GatehouseError, NotFound
from bot.domain.rules import AccessPolicy
from bot.domain.text import echo
from bot.slack.blocks.text import escape
from bot.slack.text import slack_message

log = logging.getLogger(__name__)
TYPED_ECHO_LIMIT = 700
"""What a refused command or form is repeated back up to: room for a full-length reason, so
what was typed is not lost, and no more."""


def user_message(error: Exception, *, typed: str | None = None) -> str:
    """A message for the user: the domain's own words (the people it names as mentions), what
    they typed, never a traceback."""
    if isinstance(error, GatehouseError):
        text = f"⚠️ {slack_message(error.wording)}"
    else:
        log.exception("unexpected error while handling a Slack request")
        text = "⚠️ Something went wrong on Gatehouse's side; nothing was changed. Try again."
    if typed:
        text += f"\nYou typed: `{escape(echo(typed, TYPED_ECHO_LIMIT))}`"
    return text


def unknown_resource(policy: AccessPolicy, name: str) -> NotFound:
    """Unknown resource, with the closest names when there are some."""
    close = difflib.get_close_matches(name, list(policy.resources), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    known = ", ".join(f"`{r}`" for r in sorted(policy.resources))
    return NotFound(
        f"There is no resource `{escape(echo(name, 80))}`.{hint} Known resources: {known}."
    )
