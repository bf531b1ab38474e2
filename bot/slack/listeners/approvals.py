"""Approve and Deny, on the approval card or on App Home, and the deny-reason form."""

from typing import Any, Protocol

from slack_bolt import Ack, App

from bot.domain.access import Verdict
from bot.domain.text import visible
from bot.slack import ids, workflows
from bot.slack.blocks import access as blocks
from bot.slack.errors import user_message
from bot.slack.listeners import home
from bot.slack.workflows import Deps


class Decide(Protocol):
    def __call__(
        self,
        deps: Deps,
        *,
        request_id: str,
        approver: str,
        verdict: Verdict,
        reason: str | None,
    ) -> None: ...


def register(app: App, deps: Deps) -> None:
    register_decisions(
        app,
        deps,
        decide=workflows.decide,
        approve_action=ids.APPROVE,
        deny_action=ids.DENY,
        deny_view=ids.DENY_REASON_VIEW,
    )


def register_decisions(
    app: App, deps: Deps, *, decide: Decide, approve_action: str, deny_action: str, deny_view: str
) -> None:
    """Approve at a click; Deny through a form that asks why. Errors go to the clicker."""

    def ack_click(ack: Ack) -> None:
        ack()

    def approve(body: dict[str, Any], action: dict[str, Any]) -> None:
        user = body["user"]["id"]
        try:
            decide(
                deps,
                request_id=action["value"],
                approver=user,
                verdict=Verdict.APPROVE,
                reason=None,
            )
        except Exception as error:  # reported to the clicker, privately
            workflows.tell_privately(deps, user, user_message(error), clicked_channel(body))
        if (body.get("view") or {}).get("type") == "home":
            home.publish(deps, user)

    def ask_deny_reason(body: dict[str, Any], action: dict[str, Any]) -> None:
        modal = blocks.deny_reason_modal(action["value"], callback_id=deny_view)
        modal["private_metadata"] = f"{action['value']}|{clicked_channel(body) or ''}"
        try:
            deps.chat.open_view(body["trigger_id"], modal)
        except Exception as error:
            workflows.tell_privately(
                deps, body["user"]["id"], user_message(error), clicked_channel(body)
            )

    def deny(view: dict[str, Any], body: dict[str, Any]) -> None:
        request_id, _, channel = view["private_metadata"].partition("|")
        reason = view["state"]["values"][ids.DENY_REASON_BLOCK][ids.DENY_REASON_INPUT]["value"]
        if not visible(reason or ""):
            return  # the form already said what to fix
        user = body["user"]["id"]
        try:
            decide(deps, request_id=request_id, approver=user, verdict=Verdict.DENY, reason=reason)
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error, typed=reason), channel)

    app.action(approve_action)(ack=ack_click, lazy=[approve])
    app.action(deny_action)(ack=ack_click, lazy=[ask_deny_reason])
    app.view(deny_view)(ack=ack_deny_reason, lazy=[deny])


def ack_deny_reason(ack: Ack, view: dict[str, Any]) -> None:
    """A deny needs a reason: an empty one is refused inside the form, nothing is lost."""
    values = view["state"]["values"]
    reason = values.get(ids.DENY_REASON_BLOCK, {}).get(ids.DENY_REASON_INPUT, {})
    if not visible(reason.get("value") or ""):
        ack(response_action="errors", errors={ids.DENY_REASON_BLOCK: "Say why."})
        return
    ack()


def clicked_channel(body: dict[str, Any]) -> str | None:
    """The channel of a click on a message; None for a click on App Home."""
    channel = body.get("channel") or (body.get("container") or {}).get("channel_id")
    if isinstance(channel, dict):
        return str(channel.get("id") or "") or None
    return str(channel) if channel else None
