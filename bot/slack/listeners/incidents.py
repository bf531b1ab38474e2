"""/incident open | status | commander | close, and the open-incident form."""

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.errors import GatehouseError
from bot.domain.incident import Severity
from bot.domain.text import visible
from bot.services import incidents
from bot.slack import ids, payloads
from bot.slack.blocks import incident as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.guard import command_or_sorry, form_or_refused
from bot.slack.parsing import (
    CloseIncident,
    HandOff,
    IncidentStatus,
    OpenIncident,
    parse_incident_command,
)
from bot.slack.payloads import MalformedPayload, SlashCommand, Submission
from bot.slack.text import from_slack


def register(app: App, deps: Deps) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        received = command_or_sorry(ack, command)
        if received is None:
            return
        text = received.text
        try:
            parsed = parse_incident_command(text)
        except Exception as error:
            typed = f"/incident {from_slack(text)}"
            ack(text=f"{user_message(error, typed=typed)}\n{blocks.INCIDENT_USAGE}")
            return
        if isinstance(parsed, OpenIncident) and parsed.title is not None:
            ack(text=blocks.opening(parsed.title))
        else:
            ack()

    def run_command(command: dict[str, Any], respond: Respond) -> None:
        try:
            typed = payloads.read(SlashCommand, command)
        except MalformedPayload:
            return  # the ack already said so
        text, user, channel = typed.text, typed.user_id, typed.channel_id
        try:
            parsed = parse_incident_command(text)
        except GatehouseError:
            return  # the ack already told the user what to fix
        try:
            if isinstance(parsed, OpenIncident):
                if parsed.title is None:
                    modal = deps.seal.seal_view(user, blocks.open_incident_modal())
                    deps.chat.open_view(typed.trigger_id, modal)
                    return
                incident = workflows.open_incident(
                    deps, title=parsed.title, severity=parsed.severity, opener=user
                )
                respond(text=blocks.opened_elsewhere(incident), response_type="ephemeral")
            elif isinstance(parsed, IncidentStatus):
                incident, pending, active = incidents.incident_status(
                    uow=deps.uow, channel_id=channel
                )
                respond(text=blocks.status_text(incident, pending, active))
            elif isinstance(parsed, HandOff):
                workflows.hand_off(deps, channel_id=channel, to_user=parsed.to_user, by_user=user)
            elif isinstance(parsed, CloseIncident):
                lifecycle.close_incident(
                    deps, channel_id=channel, user=user, resolution=parsed.resolution
                )
        except Exception as error:
            as_typed = f"/incident {from_slack(text)}"
            respond(text=user_message(error, typed=as_typed), response_type="ephemeral")

    app.command("/incident")(ack=ack_command, lazy=[run_command])

    def ack_open_form(ack: Ack, body: dict[str, Any]) -> None:
        submitted = form_or_refused(
            ack,
            form="incident",
            block=ids.TITLE_BLOCK,
            read=lambda: payloads.read(Submission, body),
        )
        if submitted is None:
            return
        if not visible(_value(body["view"], ids.TITLE_BLOCK, ids.TITLE_INPUT)):
            ack(response_action="errors", errors={ids.TITLE_BLOCK: "Say what is happening."})
            return
        ack()

    def run_open_form(body: dict[str, Any]) -> None:
        try:
            user = payloads.read(Submission, body).user_id
        except MalformedPayload:
            return  # the ack refused it inside the form
        view = body["view"]
        title = _value(view, ids.TITLE_BLOCK, ids.TITLE_INPUT).strip()
        if not visible(title):
            return  # the form already said what to fix
        picked = _element(view, ids.SEVERITY_BLOCK, ids.SEVERITY_INPUT).get("selected_option")
        chosen = picked.get("value") if isinstance(picked, dict) else None
        severity = Severity(chosen) if chosen in _SEVERITIES else Severity.SEV2
        try:
            incident = workflows.open_incident(deps, title=title, severity=severity, opener=user)
            deps.chat.send_dm(user, text=blocks.opened_elsewhere(incident))
        except Exception as error:
            deps.chat.send_dm(user, text=user_message(error, typed=title))

    app.view(ids.OPEN_INCIDENT_VIEW)(ack=ack_open_form, lazy=[run_open_form])


_SEVERITIES = {severity.value for severity in Severity}


def _element(view: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    """One input's state in a submitted view; empty when missing or malformed."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    found = values.get(block) if isinstance(values, dict) else None
    element = found.get(action) if isinstance(found, dict) else None
    return element if isinstance(element, dict) else {}


def _value(view: dict[str, Any], block: str, action: str) -> str:
    value = _element(view, block, action).get("value")
    return value if isinstance(value, str) else ""
