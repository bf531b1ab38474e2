"""/request-access (text or form)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext, Respond

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.durations import parse_duration
from bot.domain.errors import GatehouseError, InvalidInput, NotAllowed
from bot.domain.text import visible
from bot.slack import ids, payloads
from bot.slack.blocks import access as blocks
from bot.slack.errors import unknown_resource, user_message
from bot.slack.listeners.guard import command_or_sorry, form_or_refused
from bot.slack.metadata import TamperedMetadata
from bot.slack.parsing import parse_request_text, split_break_glass
from bot.slack.payloads import MalformedPayload, SlashCommand, Submission
from bot.slack.text import from_slack

# What the ack committed or said, for the work after it (Bolt copies the context to the lazy
# functions once the ack function has returned).
FILED = "gatehouse_filed"
REFUSED = "gatehouse_refused"
ANSWERED = "gatehouse_answered"
log = structlog.get_logger(__name__)


def register(app: App, deps: Deps) -> None:
    def check(text: str) -> tuple[str, str | None, str, bool]:
        """Everything that needs no database: syntax, resource, duration, reason, break-glass."""
        text, break_glass = split_break_glass(text)
        resource, duration, reason = parse_request_text(text)
        if resource not in deps.policy.resources:
            raise unknown_resource(deps.policy, resource)
        requested = parse_duration(duration) if duration else None
        deps.policy.resource(resource).granted_duration(requested, break_glass=break_glass)
        return resource, duration, reason, break_glass

    def finish_filing(filed: workflows.Filed, tell: Callable[[str], None]) -> None:
        """The card and what follows a request the ack filed; the requester is told once
        when Slack did not take the card, so nobody files it again (the notifier posts it
        once Slack answers)."""
        try:
            shown = workflows.after_filing(deps, filed)
        except Exception as error:
            tell(user_message(error))
            return
        if not shown:
            try:
                tell(workflows.card_promised(filed.request.id))
            except Exception:
                log.warning("requester not told the card is late", request_id=filed.request.id)

    def ack_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        received = command_or_sorry(ack, command)
        if received is None:
            return
        text = from_slack(received.text)
        if not text.strip():
            ack()
            return
        typed = f"/request-access {text}"
        try:
            resource, duration, reason, break_glass = check(text)
        except GatehouseError as error:
            ack(text=f"{user_message(error, typed=typed)}\n{blocks.REQUEST_USAGE}")
            return
        try:  # dynamic groups are looked up within a budget that leaves time to answer
            context[FILED] = workflows.record_filing(
                deps,
                channel_id=received.channel_id,
                user=received.user_id,
                resource=resource,
                duration=duration,
                reason=reason,
                break_glass=break_glass,
            )
        except Exception as error:  # refused, or the database failed: nothing was filed
            context[ANSWERED] = True
            ack(text=user_message(error, typed=typed))
            return
        ack()

    def run_command(command: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        try:
            typed = payloads.read(SlashCommand, command)
        except MalformedPayload:
            return  # the ack already said so
        if context.get(ANSWERED):
            return
        if FILED in context:

            def tell(text: str) -> None:
                respond(text=text, response_type="ephemeral")

            finish_filing(context[FILED], tell)
            return
        text, user, channel = from_slack(typed.text), typed.user_id, typed.channel_id
        if text.strip():
            return  # the ack answered what it could not file
        try:
            open_request_form(deps, user=user, channel=channel, trigger_id=typed.trigger_id)
        except Exception as error:
            respond(text=user_message(error), response_type="ephemeral")

    app.command("/request-access")(ack=ack_command, lazy=[run_command])

    def ack_form(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        form = form_or_refused(
            ack, form="request", block=ids.REASON_BLOCK, read=lambda: read_form(body)
        )
        if form is None:
            return
        values = form.values
        if not visible(form.reason):
            ack(response_action="errors", errors={ids.REASON_BLOCK: "Say why you need access."})
            return
        if form.resource is None:
            ack(response_action="errors", errors={ids.RESOURCE_BLOCK: "Pick a resource."})
            return
        rule = deps.policy.resources.get(form.resource)
        if rule is not None:  # one duration list serves every resource: each has its limit
            try:
                requested = parse_duration(form.duration) if form.duration else None
                rule.granted_duration(requested, break_glass=_break_glass_ticked(values))
            except NotAllowed as refused:  # break-glass where the resource has none
                ack(response_action="errors", errors={ids.BREAK_GLASS_BLOCK: refused.message})
                return
            except InvalidInput as refused:  # longer than the resource allows
                ack(response_action="errors", errors={ids.DURATION_BLOCK: refused.message})
                return
        try:  # an unknown resource is refused here, told privately after the ack
            context[FILED] = workflows.record_filing(
                deps,
                channel_id=form.channel,
                user=form.user,
                resource=form.resource,
                duration=form.duration,
                reason=form.reason,
                break_glass=_break_glass_ticked(values),
            )
        except GatehouseError as refusal:  # told privately after the ack, as before
            context[REFUSED] = user_message(refusal, typed=form.reason)
        except Exception as error:  # the database failed: nothing filed, the form stays open
            ack(response_action="errors", errors={ids.REASON_BLOCK: user_message(error)})
            return
        ack()

    def run_form(body: dict[str, Any], context: BoltContext) -> None:
        try:
            form = read_form(body)
        except (MalformedPayload, TamperedMetadata):
            return  # the ack refused it inside the form
        if not visible(form.reason) or form.resource is None:
            return  # the form already said what to fix

        def tell(text: str) -> None:
            workflows.tell_privately(deps, form.user, text, form.channel)

        if REFUSED in context:
            tell(context[REFUSED])
            return
        if FILED in context:
            finish_filing(context[FILED], tell)

    def read_form(body: dict[str, Any]) -> RequestForm:
        """The request form as submitted, its channel taken only from signed metadata."""
        submitted = payloads.read(Submission, body)
        channel = deps.seal.verify(submitted.user_id, submitted.private_metadata)
        if not payloads.is_channel_id(channel):
            raise MalformedPayload("Submission", "view.private_metadata: not a channel id")
        state = body["view"].get("state")
        values = state.get("values") if isinstance(state, dict) else None
        if not isinstance(values, dict):
            raise MalformedPayload("Submission", "view.state.values: not an object")
        return RequestForm(
            user=submitted.user_id,
            channel=channel,
            values=values,
            resource=_picked(values, ids.RESOURCE_BLOCK, ids.RESOURCE_INPUT),
            duration=_picked(values, ids.DURATION_BLOCK, ids.DURATION_INPUT),
            reason=_typed(values, ids.REASON_BLOCK, ids.REASON_INPUT),
        )

    app.view(ids.REQUEST_ACCESS_VIEW)(ack=ack_form, lazy=[run_form])


def open_request_form(deps: Deps, *, user: str, channel: str, trigger_id: str) -> None:
    """The request form, offering `user` only what they may request in `channel`
    (`/request-access` alone, and the incident card's Request access button)."""
    offered = workflows.requestable(deps, channel_id=channel, user=user)
    modal = deps.seal.seal_view(user, blocks.request_modal(offered, channel))
    deps.chat.open_view(trigger_id, modal)


@dataclass(frozen=True)
class RequestForm:
    user: str
    channel: str
    values: dict[str, Any]
    resource: str | None
    duration: str | None
    reason: str


def _element(values: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    """One input's state; an empty one for a missing or malformed block or input."""
    found = values.get(block)
    element = found.get(action) if isinstance(found, dict) else None
    return element if isinstance(element, dict) else {}


def _picked(values: dict[str, Any], block: str, action: str) -> str | None:
    """A select's chosen value; None when nothing (or something malformed) was chosen."""
    option = _element(values, block, action).get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) and value else None


def _typed(values: dict[str, Any], block: str, action: str) -> str:
    value = _element(values, block, action).get("value")
    return value if isinstance(value, str) else ""


def _break_glass_ticked(values: dict[str, Any]) -> bool:
    picked = _element(values, ids.BREAK_GLASS_BLOCK, ids.BREAK_GLASS_INPUT)
    return isinstance(picked.get("selected_options"), list) and bool(picked["selected_options"])
