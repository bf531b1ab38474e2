"""Extend: the requester's button and form; Approve / Deny extension on the request card."""

from typing import Any

from slack_bolt import Ack, App

from bot.domain.durations import format_duration
from bot.domain.errors import InvalidState, NotAllowed
from bot.services import access, extensions
from bot.slack import extending, ids, workflows
from bot.slack.blocks import extension as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.approvals import clicked_channel, register_decisions
from bot.slack.workflows import Deps


def register(app: App, deps: Deps) -> None:
    def ack_click(ack: Ack) -> None:
        ack()

    def open_form(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = body["user"]["id"], clicked_channel(body) or ""
        try:
            request = access.get_request(uow=deps.uow, request_id=action["value"])
            if user != request.requester_id:
                raise NotAllowed(f"Only <@{request.requester_id}> can extend {request.id}.")
            room = extensions.headroom(uow=deps.uow, policy=deps.policy, request_id=request.id)
            if room.total_seconds() < 60:
                longest = format_duration(deps.policy.resource(request.resource).max_ttl)
                raise InvalidState(
                    f"{request.id} cannot be extended: it is not active or already ends at its "
                    f"maximum ({longest} from the first issue). File a new request if you "
                    "still need access."
                )
            deps.chat.open_view(body["trigger_id"], blocks.extend_modal(request, room, channel))
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error), channel or None)

    app.action(ids.EXTEND)(ack=ack_click, lazy=[open_form])

    def submit_form(view: dict[str, Any], body: dict[str, Any]) -> None:
        request_id, _, channel = view["private_metadata"].partition("|")
        values = view["state"]["values"]
        duration = values[ids.EXTEND_DURATION_BLOCK][ids.EXTEND_DURATION_INPUT]
        reason = (values.get(ids.EXTEND_REASON_BLOCK, {}).get(ids.EXTEND_REASON_INPUT) or {}).get(
            "value"
        )
        user = body["user"]["id"]
        try:
            extending.ask(
                deps,
                request_id=request_id,
                user=user,
                duration=duration["selected_option"]["value"],
                reason=reason,
            )
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error, typed=reason), channel or None)

    app.view(ids.EXTEND_VIEW)(ack=ack_click, lazy=[submit_form])

    register_decisions(
        app,
        deps,
        decide=extending.decide,
        approve_action=ids.EXTEND_APPROVE,
        deny_action=ids.EXTEND_DENY,
        deny_view=ids.EXTEND_DENY_VIEW,
    )
