"""The Bolt app factory. No global App: the composition root calls `create_app`."""

import logging
import traceback
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot.slack.installation import Installation, bind_to_installation, learn_installation
from bot.slack.listeners import access, approvals, extensions, home, incidents, my_access
from bot.slack.payloads import SORRY
from bot.slack.workflows import Deps

# Slow work (Vault, Slack calls) runs here after the ack; bounded, so a burst cannot
# exhaust the process.
WORKERS = 16


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

    HTTP mode passes `process_before_response=True`: the ack is the HTTP response and the
    lazy listeners run on the bounded pool afterwards. Socket Mode acks over the socket.
    `installation`: the workspace and app to serve; learned with auth.test when not given.
    """
    logger = logging.getLogger("gatehouse.slack")
    app = App(
        client=client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        # auth.test once at start: a bad token fails now, not at the first command.
        token_verification_enabled=True,
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
    its own error for a 500), with a short apology where the ack can carry one (a command)."""
    logging.getLogger("gatehouse.slack").error(
        "a Slack listener failed: %s at %s", type(error).__name__, _where(error)
    )
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
