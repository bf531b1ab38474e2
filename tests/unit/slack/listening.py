"""The real listeners on fakes, without HTTP: a stand-in for Bolt's App that keeps what each
listener registers and calls it the way Bolt does: ack first, then the lazy functions whatever
the ack said (a form refused with `response_action: errors` still runs them, see
https://github.com/slackapi/bolt-python/issues/482), each given only the arguments it names."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from slack_bolt import App

from bot.app.deps import Deps
from bot.slack.listeners import access, approvals, extensions, incidents, my_access

Listener = Callable[..., None]
Registered = tuple[Listener, list[Listener]]


@dataclass
class Replies:
    """What one listener run said back: through `ack` and through `respond`."""

    acks: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)

    def ack(self, **kwargs: Any) -> None:
        self.acks.append(kwargs)

    def respond(self, **kwargs: Any) -> None:
        self.responses.append(kwargs)

    @property
    def text(self) -> str:
        """Every text said back, in order, one per line."""
        said = [str(a.get("text") or "") for a in self.acks + self.responses]
        return "\n".join(s for s in said if s)

    @property
    def form_errors(self) -> dict[str, str]:
        """The per-field errors a form submission was acknowledged with (empty: accepted)."""
        for acked in self.acks:
            if acked.get("response_action") == "errors":
                return cast(dict[str, str], acked["errors"])
        return {}


class Listeners:
    """Stands in for Bolt's App: `app.command(name)(ack=..., lazy=[...])` and the like."""

    def __init__(self, deps: Deps) -> None:
        self.commands: dict[str, Registered] = {}
        self.views: dict[str, Registered] = {}
        self.actions: dict[str, Registered] = {}
        self.deps = deps
        app = cast(App, self)
        for module in (incidents, access, approvals, my_access, extensions):
            module.register(app, deps)

    def command(self, name: str) -> Callable[..., None]:
        return self._keeper(self.commands, name)

    def view(self, callback_id: str) -> Callable[..., None]:
        return self._keeper(self.views, callback_id)

    def action(self, action_id: str) -> Callable[..., None]:
        return self._keeper(self.actions, action_id)

    @staticmethod
    def _keeper(into: dict[str, Registered], key: str) -> Callable[..., None]:
        def keep(*, ack: Listener, lazy: list[Listener]) -> None:
            into[key] = (ack, lazy)

        return keep

    def run_command(
        self,
        name: str,
        text: str,
        *,
        user: str = "U0ONCALL2",
        channel: str = "C0NOWHERE",
        ack_only: bool = False,
    ) -> Replies:
        """`ack_only`: stop where a process killed right after the ack would have stopped."""
        command = {"text": text, "user_id": user, "channel_id": channel, "trigger_id": "T1"}
        return _run(self.commands[name], ack_only, command=command, body=command)

    def submit(
        self, callback_id: str, view: dict[str, Any], *, user: str, ack_only: bool = False
    ) -> Replies:
        """The form as Slack sends it back: with the metadata the bot signed when it opened it."""
        view = self.deps.seal.seal_view(user, view)
        body = {"type": "view_submission", "user": {"id": user}, "view": view}
        return _run(self.views[callback_id], ack_only, view=view, body=body)

    def click(
        self, action_id: str, value: Any, *, user: str, channel: str, ack_only: bool = False
    ) -> Replies:
        action = {"action_id": action_id, "value": value}
        body = {
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": channel},
            "trigger_id": "T1",
            "actions": [action],
        }
        return _run(self.actions[action_id], ack_only, action=action, body=body)


def _run(registered: Registered, ack_only: bool = False, **arguments: Any) -> Replies:
    replies = Replies()
    # One context for the ack and the lazy functions, as Bolt copies it to them after the ack.
    context: dict[str, Any] = {}
    arguments |= {"ack": replies.ack, "respond": replies.respond, "context": context}
    ack, lazy = registered
    for listener in (ack,) if ack_only else (ack, *lazy):
        names = inspect.signature(listener).parameters
        listener(**{name: arguments[name] for name in names})
    return replies


def view_state(values: dict[str, dict[str, dict[str, Any]]], metadata: str = "") -> dict[str, Any]:
    """A submitted view: `values` as Slack nests them (block, then action, then the value)."""
    return {"state": {"values": values}, "private_metadata": metadata}
