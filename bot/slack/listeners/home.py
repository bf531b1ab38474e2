"""App Home: rebuilt each time someone opens it, and after a click on it; its Revoke button."""

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.app import workflows
from bot.app.deps import Deps
from bot.services import access, incidents
from bot.slack import ids, payloads
from bot.slack.blocks.home import home_view
from bot.slack.errors import user_message
from bot.slack.payloads import Click, HomeOpened, MalformedPayload

# What the ack committed, for the work after it (Bolt copies the context to the lazy
# functions once the ack function has returned).
REVOKED = "gatehouse_home_revoked"
REFUSED = "gatehouse_home_refused"


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

    def ack_revoke(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """The end of access is committed before Slack is answered, as `/access revoke` is;
        a request another worker holds (issuing it) is revoked after the ack, once it is
        done."""
        try:
            click = payloads.read(Click, body)
        except MalformedPayload:
            ack()  # refused after the ack, where the clicker can be told
            return
        try:
            grant = workflows.record_revoke(deps, request_id=click.value, user=click.user_id)
            context[REVOKED] = grant is not None
        except Exception as error:  # refused, or the database failed: nothing was recorded
            context[REFUSED] = user_message(error)
        ack()

    def revoke(body: dict[str, Any], context: BoltContext) -> None:
        try:
            click = payloads.read(Click, body)
        except MalformedPayload as error:
            payloads.refused(error)
            return
        refused: str | None = context.get(REFUSED)
        try:
            if refused is not None:
                workflows.tell_privately(deps, click.user_id, refused)
            elif context.get(REVOKED):
                workflows.after_revoke(deps, request_id=click.value)
            else:
                workflows.revoke(deps, request_id=click.value, user=click.user_id)
        except Exception as error:  # reported to the clicker, privately
            workflows.tell_privately(deps, click.user_id, user_message(error))
        publish(deps, click.user_id)

    app.action(ids.REVOKE)(ack=ack_revoke, lazy=[revoke])


def publish(deps: Deps, user: str) -> None:
    mine = access.list_my_access(uow=deps.uow, user=user)
    view = home_view(
        to_decide=mine.to_decide,
        active=mine.active,
        incidents=incidents.list_open_incidents(uow=deps.uow),
        now=deps.clock(),
    )
    deps.chat.publish_home(user, view)
