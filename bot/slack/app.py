"""The Bolt app factory. No global App: the composition root calls `create_app`."""

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.listeners import access, approvals, extensions, home, incidents, my_access
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
) -> App:
    """A Bolt app with every listener registered.

    HTTP mode passes `process_before_response=True`: the ack is the HTTP response and the
    lazy listeners run on the bounded pool afterwards. Socket Mode acks over the socket.
    """
    logger = logging.getLogger("gatehouse.slack")
    app = App(
        client=client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        # auth.test once at start: a bad token fails now, not at the first command.
        token_verification_enabled=True,
        listener_executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack"),
        logger=logger,
    )
    incidents.register(app, deps)
    access.register(app, deps)
    approvals.register(app, deps)
    my_access.register(app, deps)
    extensions.register(app, deps)
    home.register(app, deps)
    return app
