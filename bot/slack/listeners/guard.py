"""The first thing every ack does: read the payload, or refuse it the way its user can see.

A malformed command is answered with an apology; a malformed form, or one whose metadata this
bot did not sign for this user, is refused inside the form. Each refusal is one log line."""

from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import Ack

from bot.slack import metadata, payloads
from bot.slack.metadata import FORM_TAMPERED, TamperedMetadata
from bot.slack.payloads import MalformedPayload, SlashCommand

T = TypeVar("T")


def command_or_sorry(ack: Ack, command: dict[str, Any]) -> SlashCommand | None:
    """The slash command, or None once its sender was told it could not be read."""
    try:
        return payloads.read(SlashCommand, command)
    except MalformedPayload as error:
        payloads.refused(error)
        ack(text=payloads.SORRY)
        return None


def form_or_refused(ack: Ack, *, form: str, block: str, read: Callable[[], T]) -> T | None:
    """What `read` makes of a submitted form, or None once the form was refused with the
    reason shown under `block`. Other exceptions of `read` pass through."""
    try:
        return read()
    except MalformedPayload as error:
        payloads.refused(error)
        ack(response_action="errors", errors={block: payloads.SORRY})
    except TamperedMetadata:
        metadata.refused(form)
        ack(response_action="errors", errors={block: FORM_TAMPERED})
    return None
