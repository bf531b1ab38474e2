"""App Home: rebuilt each time someone opens it."""

from typing import Any

from slack_bolt import App

from bot.app.deps import Deps
from bot.services import access, incidents
from bot.slack import payloads
from bot.slack.blocks.home import home_view
from bot.slack.payloads import HomeOpened, MalformedPayload


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any]) -> None:
        try:
            opened = payloads.read(HomeOpened, event)
        except MalformedPayload as error:
            payloads.refused(error)  # nobody to tell: an event without a user
            return
        if opened.tab != "home":
            return
        publish(deps, opened.user)


def publish(deps: Deps, user: str) -> None:
    mine = access.list_my_access(uow=deps.uow, user=user)
    view = home_view(
        to_decide=mine.to_decide,
        active=mine.active,
        incidents=incidents.list_open_incidents(uow=deps.uow),
        now=deps.clock(),
    )
    deps.chat.publish_home(user, view)
