"""The parts of Slack's payloads the listeners read, checked before anything is done with them.

A payload that passed the signature check can still be malformed (a value that is not a
string, no actions, an event without a user, a form without its selections), and an id can
carry markup (`U0X><!channel|x`). Each listener reads its payload through one of these models:
what does not fit is refused with one log line and, where someone can be told, a clear
ephemeral message; it never reaches the services, never raises out of a listener.

Id shapes: Slack ids are a type letter and uppercase ASCII letters and digits (user ids start
with U, or W in Enterprise Grid: https://api.slack.com/changelog/2016-08-11-user-id-format-changes;
channels C, private channels G, direct messages D; workspaces T; apps A). Their length has grown
(9, then 11 characters) and is not documented as fixed, so the bound is generous: 32.
"""

import logging
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.slack.blocks.text import clip

log = logging.getLogger(__name__)

MAX_ID = 32
_ID_BODY = rf"[A-Z0-9]{{1,{MAX_ID - 1}}}"

USER_ID = re.compile(rf"^[UW]{_ID_BODY}$")
CHANNEL_ID = re.compile(rf"^[CGD]{_ID_BODY}$")
TEAM_ID = re.compile(rf"^T{_ID_BODY}$")
APP_ID = re.compile(rf"^A{_ID_BODY}$")

# Action values and metadata the bot itself wrote: request ids and the like, never long.
MAX_VALUE = 200

UserId = Annotated[str, StringConstraints(pattern=USER_ID.pattern)]
ChannelId = Annotated[str, StringConstraints(pattern=CHANNEL_ID.pattern)]
ActionValue = Annotated[str, StringConstraints(min_length=1, max_length=MAX_VALUE)]
TriggerId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_VALUE)]


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.match(value) is not None


def is_channel_id(value: object) -> bool:
    return isinstance(value, str) and CHANNEL_ID.match(value) is not None


class MalformedPayload(Exception):
    """A signed payload without the shape its listener needs; `shown` is safe to echo."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(f"{kind}: {problem}")
        self.kind = kind
        self.problem = problem


SORRY = (
    "⚠️ Gatehouse could not read what Slack sent for this (it was not in the expected "
    "form); nothing was changed. Try again, and tell the Gatehouse operators if it lasts."
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class SlashCommand(_Model):
    user_id: UserId
    channel_id: ChannelId
    trigger_id: TriggerId
    text: str = ""  # bounded by the HTTP edge's body cap; what is echoed back is clipped


class _Who(_Model):
    id: UserId


class _Where(_Model):
    id: ChannelId


class _Container(_Model):
    channel_id: ChannelId | None = None


class _ViewType(_Model):
    type: str | None = None


class _Action(_Model):
    value: ActionValue


class Click(_Model):
    """A click on one of the bot's buttons: who, where, and the button's value."""

    user: _Who
    trigger_id: TriggerId
    actions: Annotated[list[_Action], Field(min_length=1, max_length=1)]
    channel: _Where | None = None
    container: _Container | None = None
    view: _ViewType | None = None

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def value(self) -> str:
        return self.actions[0].value

    @property
    def channel_id(self) -> str | None:
        """The channel of a click on a message; None for a click on App Home."""
        if self.channel is not None:
            return self.channel.id
        return self.container.channel_id if self.container is not None else None

    @property
    def on_home(self) -> bool:
        return self.view is not None and self.view.type == "home"


class _SubmittedView(_Model):
    private_metadata: Annotated[str, StringConstraints(max_length=3000)] = ""


class Submission(_Model):
    """A form submitted: who, and the view's private metadata (checked separately)."""

    user: _Who
    view: _SubmittedView

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def private_metadata(self) -> str:
        return self.view.private_metadata


class HomeOpened(_Model):
    user: UserId
    tab: str = "home"


M = TypeVar("M", bound=BaseModel)


def read(model: type[M], payload: Any) -> M:
    """`payload` as `model`, or MalformedPayload naming the first field that did not fit
    (by location only: the value itself is never echoed or logged)."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise MalformedPayload(model.__name__, f"{clip(where, 80)}: {first['type']}") from None


def refused(error: MalformedPayload) -> None:
    """The one log line for a malformed payload."""
    log.warning("malformed Slack payload refused (%s): %s", error.kind, error.problem)
