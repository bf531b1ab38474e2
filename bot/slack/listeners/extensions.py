"""Extend: the requester's button and form; Approve / Deny extension on the request card."""

from typing import Any

from slack_bolt import Ack, App

from bot.app import extending, workflows
from bot.app.deps import Deps
from bot.domain.durations import format_duration
from bot.domain.errors import InvalidState, NotAllowed
from bot.domain.wording import Person, Wording
from bot.services import access, extensions
from bot.slack import ids, payloads
from bot.slack.blocks import extension as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.approvals import read_click, register_decisions
from bot.slack.listeners.guard import form_or_refused
from bot.slack.metadata import TamperedMetadata
from bot.slack.payloads import MalformedPayload, Submission


def register(app: App, deps: Deps) -> None:
    def ack_click(ack: Ack) -> None:
        ack()

    def open_form(body: dict[str, Any]) -> None:
        click = read_click(deps, body)
        if click is None:
            return
        user, channel = click.user_id, click.channel_id or ""
        try:
            request = access.get_request(uow=deps.uow, request_id=click.value)
            if user != request.requester_id:
                raise NotAllowed(
                    Wording("Only ", Person(request.requester_id), f" can extend {request.id}.")
                )
            room = extensions.headroom(uow=deps.uow, policy=deps.policy, request_id=request.id)
            if room.total_seconds() < 60:
                longest = format_duration(deps.policy.resource(request.resource).max_ttl)
                raise InvalidState(
                    f"{request.id} cannot be extended: it is not active or already ends at its "
                    f"maximum ({longest} from the first issue). File a new request if you "
                    "still need access."
                )
            modal = blocks.extend_modal(request, room, channel)
            deps.chat.open_view(click.trigger_id, deps.seal.seal_view(user, modal))
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error), channel or None)

    app.action(ids.EXTEND)(ack=ack_click, lazy=[open_form])

    def ack_form(ack: Ack, body: dict[str, Any]) -> None:
        form = form_or_refused(
            ack, form="extend", block=ids.EXTEND_DURATION_BLOCK, read=lambda: read_extend_form(body)
        )
        if form is not None:
            ack()

    def submit_form(body: dict[str, Any]) -> None:
        try:
            user, request_id, channel, duration, reason = read_extend_form(body)
        except (MalformedPayload, TamperedMetadata):
            return  # the ack refused it inside the form
        try:
            extending.ask(deps, request_id=request_id, user=user, duration=duration, reason=reason)
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error, typed=reason), channel)

    def read_extend_form(body: dict[str, Any]) -> tuple[str, str, str | None, str, str | None]:
        """(user, request id, channel, duration, reason), the request and channel from signed
        metadata; MalformedPayload or TamperedMetadata otherwise."""
        submitted = payloads.read(Submission, body)
        request_id, _, channel = deps.seal.verify(
            submitted.user_id, submitted.private_metadata
        ).partition("|")
        state = body["view"].get("state")
        values = state.get("values") if isinstance(state, dict) else None
        values = values if isinstance(values, dict) else {}
        duration = _field(values, ids.EXTEND_DURATION_BLOCK, ids.EXTEND_DURATION_INPUT)
        option = duration.get("selected_option")
        picked = option.get("value") if isinstance(option, dict) else None
        if not isinstance(picked, str) or not picked:
            raise MalformedPayload("ExtendForm", "no duration picked")
        reason = _field(values, ids.EXTEND_REASON_BLOCK, ids.EXTEND_REASON_INPUT).get("value")
        return (
            submitted.user_id,
            request_id,
            channel if payloads.is_channel_id(channel) else None,
            picked,
            reason if isinstance(reason, str) else None,
        )

    app.view(ids.EXTEND_VIEW)(ack=ack_form, lazy=[submit_form])

    register_decisions(
        app,
        deps,
        record=extending.record_decision,
        follow_up=extending.after_decision,
        approve_action=ids.EXTEND_APPROVE,
        deny_action=ids.EXTEND_DENY,
        deny_view=ids.EXTEND_DENY_VIEW,
    )


def _field(values: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    found = values.get(block)
    element = found.get(action) if isinstance(found, dict) else None
    return element if isinstance(element, dict) else {}
