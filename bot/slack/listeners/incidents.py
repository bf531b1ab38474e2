"""/incident open | status | commander | close, and the open-incident form."""

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.errors import GatehouseError
from bot.domain.incident import Severity
from bot.domain.text import visible
from bot.services import incidents
from bot.slack import ids, lifecycle, workflows
from bot.slack.blocks import incident as blocks
from bot.slack.errors import user_message
from bot.slack.parsing import (
    CloseIncident,
    HandOff,
    IncidentStatus,
    OpenIncident,
    parse_incident_command,
)
from bot.slack.text import from_slack
from bot.slack.workflows import Deps


def register(app: App, deps: Deps) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        text = command.get("text", "")
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
        text = command.get("text", "")
        user, channel = command["user_id"], command["channel_id"]
        try:
            parsed = parse_incident_command(text)
        except GatehouseError:
            return  # the ack already told the user what to fix
        try:
            if isinstance(parsed, OpenIncident):
                if parsed.title is None:
                    deps.chat.open_view(command["trigger_id"], blocks.open_incident_modal())
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
            typed = f"/incident {from_slack(text)}"
            respond(text=user_message(error, typed=typed), response_type="ephemeral")

    app.command("/incident")(ack=ack_command, lazy=[run_command])

    def ack_open_form(ack: Ack, view: dict[str, Any]) -> None:
        if not visible(_value(view, ids.TITLE_BLOCK, ids.TITLE_INPUT)):
            ack(response_action="errors", errors={ids.TITLE_BLOCK: "Say what is happening."})
            return
        ack()

    def run_open_form(view: dict[str, Any], body: dict[str, Any]) -> None:
        user = body["user"]["id"]
        title = _value(view, ids.TITLE_BLOCK, ids.TITLE_INPUT).strip()
        if not visible(title):
            return  # the form already said what to fix
        state = view["state"]["values"][ids.SEVERITY_BLOCK][ids.SEVERITY_INPUT]
        severity = Severity((state.get("selected_option") or {}).get("value", "sev2"))
        try:
            incident = workflows.open_incident(deps, title=title, severity=severity, opener=user)
            deps.chat.send_dm(user, text=blocks.opened_elsewhere(incident))
        except Exception as error:
            deps.chat.send_dm(user, text=user_message(error, typed=title))

    app.view(ids.OPEN_INCIDENT_VIEW)(ack=ack_open_form, lazy=[run_open_form])


def _value(view: dict[str, Any], block: str, action: str) -> str:
    return str(view["state"]["values"].get(block, {}).get(action, {}).get("value") or "")
