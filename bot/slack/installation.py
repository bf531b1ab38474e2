"""The one workspace and app this bot serves; payloads for any other are refused.

The signing secret proves a request came through Slack for this app's secret, not that it is
about this installation: a payload naming another workspace (`team.id`, `team_id`) or another
app (`api_app_id`) is acknowledged, logged in one line and otherwise ignored.

The ids come from settings when given, else from `auth.test` at start (its answer carries
`team_id`, and `app_id` for an app's bot token: https://docs.slack.dev/reference/methods/auth.test,
response fields as typed in https://docs.slack.dev/tools/node-slack-sdk/reference/web-api/type-aliases/AuthTestResponse).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot.slack.payloads import APP_ID, TEAM_ID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installation:
    team_id: str
    app_id: str | None  # None: Slack did not say and none is configured; only the team is bound


def learn_installation(
    client: WebClient, *, team_id: str | None = None, app_id: str | None = None
) -> Installation:
    """Configured ids win; the rest from auth.test. Raises ValueError for an id of a bad shape."""
    if team_id is None or app_id is None:
        answer = client.auth_test()
        team_id = team_id or _str_or_none(answer.get("team_id"))
        app_id = app_id or _str_or_none(answer.get("app_id"))
    if team_id is None or TEAM_ID.match(team_id) is None:
        raise ValueError(f"the workspace id is not a Slack team id: {str(team_id)[:40]!r}")
    if app_id is not None and APP_ID.match(app_id) is None:
        raise ValueError(f"the app id is not a Slack app id: {app_id[:40]!r}")
    if app_id is None:
        log.warning(
            "Slack did not name this app's id (auth.test has no app_id): payloads are bound "
            "to workspace %s only; set SLACK_APP_ID to bind them to the app too",
            team_id,
        )
    return Installation(team_id=team_id, app_id=app_id)


def payload_team(body: dict[str, Any]) -> object:
    """The workspace a payload names: `team.id` (interactivity) or `team_id` (commands,
    events, and some interactivity that names it at the top level)."""
    team = body.get("team")
    if isinstance(team, dict) and "id" in team:
        return team["id"]
    return body.get("team_id", team)


def foreign(body: dict[str, Any], installation: Installation) -> str | None:
    """Why a payload is not for this installation, or None when it is (or names neither)."""
    team = payload_team(body)
    if team is not None and team != installation.team_id:
        return "another workspace"
    app = body.get("api_app_id")
    if installation.app_id is not None and app is not None and app != installation.app_id:
        return "another app"
    return None


def bind_to_installation(app: App, installation: Installation) -> None:
    """A global middleware: payloads for another workspace or app get an empty ack, nothing else."""

    def only_this_installation(
        body: dict[str, Any], next: Callable[[], None]
    ) -> BoltResponse | None:
        why = foreign(body, installation)
        if why is None:
            next()
            return None
        log.warning("Slack payload for %s refused (type %s)", why, _kind(body))
        return BoltResponse(status=200, body="")

    app.use(only_this_installation)


def _kind(body: dict[str, Any]) -> str:
    kind = body.get("type") or ("slash_command" if "command" in body else "unknown")
    return str(kind)[:40]


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
