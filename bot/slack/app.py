"""The Bolt app factory. No global App: the composition root calls `create_app`."""

import logging
import traceback
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.request.payload_utils import (
    to_action,
    to_event,
    to_message,
    to_options,
    to_shortcut,
    to_step,
    to_view,
)
from slack_sdk import WebClient

from bot.app.deps import Deps
from bot.slack.installation import Installation, bind_to_installation, learn_installation
from bot.slack.listeners import access, approvals, extensions, home, incidents, my_access
from bot.slack.payloads import SORRY

# Slow work (Vault, Slack calls) runs here after the ack; bounded, so a burst cannot
# exhaust the process.
WORKERS = 16


log = logging.getLogger("gatehouse.slack")

# Bolt's own readers of a payload's parts, run on every request to build listener arguments.
_BOLT_READERS = (to_action, to_view, to_event, to_message, to_options, to_shortcut, to_step)
# Parts Bolt reads as objects wherever they appear (also when it only logs a request it has no
# listener for): a string in their place is not a payload Slack sends.
_OBJECT_PARTS = ("view", "event", "team", "user", "channel", "container", "message", "enterprise")


class GatehouseApp(App):
    """Bolt, refusing payloads Bolt itself cannot read.

    Bolt reads parts of every payload (`actions[0]`, `event.type`…) before any listener,
    middleware or error handler runs, and a payload with `actions: []` or an event that is not
    an object raises inside Bolt: a 500 and a traceback. Such a payload is answered here with
    a 200 and one log line. Every payload that reaches Bolt is authenticated already: in HTTP
    mode the edge checked its signature (`bot/slack/edge.py`), in Socket Mode the socket is.
    """

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        problem = unreadable(req.body)
        if problem is None:
            try:
                return super().dispatch(req)
            except Exception as error:  # Bolt's own failure, after or before verification
                problem = f"Bolt failed: {type(error).__name__} at {_where(error)}"
        log.warning("signed Slack payload refused: %s", problem)
        return BoltResponse(status=200, body="")


def refuse_unwrappable(error: Exception) -> BoltResponse:
    """A signed body Bolt cannot even wrap as a request (a `payload` that is not an object, a
    user that is a number): 400 and one log line; never a 500."""
    log.warning("signed Slack payload refused: Bolt cannot read it (%s)", type(error).__name__)
    return BoltResponse(status=400, body="")


def unreadable(body: object) -> str | None:
    """Why Bolt could not read `body`'s parts, or None when it can."""
    if not isinstance(body, dict):
        return "the payload is not an object"
    for key in _OBJECT_PARTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"its {key} is not an object"
    actions = body.get("actions")
    if actions is not None and not (
        isinstance(actions, list) and all(isinstance(action, dict) for action in actions)
    ):
        return "its actions are not a list of objects"
    for read in _BOLT_READERS:
        try:
            part = read(body)
        except (LookupError, TypeError, AttributeError):
            return f"its {read.__name__[3:]} cannot be read"
        if part is not None and not isinstance(part, dict):
            return f"its {read.__name__[3:]} is not an object"
    return None


def create_app(
    *,
    deps: Deps,
    client: WebClient,
    signing_secret: str | None,
    process_before_response: bool,
    workers: int = WORKERS,
    installation: Installation | None = None,
    executor: Executor | None = None,
) -> App:
    """A Bolt app with every listener registered, bound to one workspace and app.

    The composition root passes `process_before_response=True` in both modes: the ack
    function runs to its end (committing what its answer promises), then Slack is answered
    (the HTTP response, or over the socket) and the lazy listeners run on the bounded pool.
    `installation`: the workspace and app to serve; learned with auth.test when not given.
    """
    logger = log
    app = GatehouseApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        # auth.test once at start: a bad token fails now, not at the first command.
        token_verification_enabled=True,
        # No listener for a request: one line from `_no_traceback_to_slack`, not Bolt's warning
        # that quotes the payload's ids and suggests code.
        raise_error_for_unhandled_request=True,
        listener_executor=executor
        or ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack"),
        logger=logger,
    )
    bind_to_installation(app, installation or learn_installation(client))
    app.error(_no_traceback_to_slack)
    incidents.register(app, deps)
    access.register(app, deps)
    approvals.register(app, deps)
    my_access.register(app, deps)
    extensions.register(app, deps)
    home.register(app, deps)
    return app


def _no_traceback_to_slack(error: Exception, body: Any, response: BoltResponse | None) -> None:
    """The backstop behind each listener's own checks: one log line and a 200 (Slack shows
    its own error for a 500), with a short apology where the ack can carry one (a command).
    A request no listener handles keeps Bolt's 404 and is one line naming nothing it carried;
    one a global middleware stopped (another workspace) was logged by that middleware."""
    if isinstance(error, BoltUnhandledRequestError):
        if error.last_global_middleware_name is None:
            log.warning("a Slack request no listener handles was answered 404")
        return
    log.error("a Slack listener failed: %s at %s", type(error).__name__, _where(error))
    if response is None:
        return
    response.status = 200
    is_command = isinstance(body, dict) and "command" in body
    response.body = SORRY if is_command else ""
    response.headers["content-type"] = ["text/plain;charset=utf-8"]


def _where(error: Exception) -> str:
    """The innermost frame, `file:line in function`: enough to find the bug, one line long."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 2)[-1]}:{last.lineno} in {last.name}"
