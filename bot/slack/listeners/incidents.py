"""/incident open | status | commander | close, the open-incident form, and the incident
card's buttons (Request access, Hand off, Close) with their forms: each button runs the same
command as its slash command, with the same checks."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.app import lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.errors import GatehouseError
from bot.domain.incident import Incident, Severity
from bot.domain.text import visible
from bot.services import incidents
from bot.slack import ids, payloads
from bot.slack.blocks import incident as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.access import open_request_form
from bot.slack.listeners.approvals import read_click
from bot.slack.listeners.guard import command_or_sorry, form_or_refused
from bot.slack.metadata import TamperedMetadata
from bot.slack.parsing import (
    CloseIncident,
    HandOff,
    IncidentStatus,
    OpenIncident,
    parse_incident_command,
)
from bot.slack.payloads import Click, MalformedPayload, SlashCommand, Submission
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
    _register_card(app, deps)


def _register_card(app: App, deps: Deps) -> None:
    """The pinned card's buttons; their value is the incident's id."""

    def ack_click(ack: Ack) -> None:
        ack()

    def clicked(body: dict[str, Any], then: Callable[[Click, Incident], None]) -> None:
        """The incident clicked on, given to `then`; any refusal told to the clicker."""
        click = read_click(deps, body)
        if click is None:
            return
        try:
            then(click, incidents.get_incident(uow=deps.uow, incident_id=click.value))
        except Exception as error:
            workflows.tell_privately(deps, click.user_id, user_message(error), click.channel_id)

    def request_access(body: dict[str, Any]) -> None:
        def then(click: Click, incident: Incident) -> None:
            open_request_form(
                deps, user=click.user_id, channel=incident.channel_id, trigger_id=click.trigger_id
            )

        clicked(body, then)

    def commander_form(to: str, form: Callable[[Incident], dict[str, Any]]) -> Any:
        def open_form(body: dict[str, Any]) -> None:
            def then(click: Click, incident: Incident) -> None:
                incident.require_open()
                is_admin = deps.policy.is_admin(click.user_id)
                incident.require_commander(click.user_id, is_admin=is_admin, to=to)
                modal = deps.seal.seal_view(click.user_id, form(incident))
                deps.chat.open_view(click.trigger_id, modal)

            clicked(body, then)

        return open_form

    app.action(ids.INCIDENT_REQUEST)(ack=ack_click, lazy=[request_access])
    app.action(ids.INCIDENT_HAND_OFF)(
        ack=ack_click, lazy=[commander_form("hand off", blocks.hand_off_modal)]
    )
    app.action(ids.INCIDENT_CLOSE)(
        ack=ack_click, lazy=[commander_form("close this incident", blocks.close_modal)]
    )

    def read_incident_form(body: dict[str, Any], block: str, action: str) -> _IncidentForm:
        """Who submitted, the incident (from signed metadata) and the one input's state."""
        submitted = payloads.read(Submission, body)
        incident_id = deps.seal.verify(submitted.user_id, submitted.private_metadata)
        return _IncidentForm(submitted.user_id, incident_id, _element(body["view"], block, action))

    def ack_hand_off(ack: Ack, body: dict[str, Any]) -> None:
        form = form_or_refused(
            ack,
            form="hand off",
            block=ids.HAND_OFF_BLOCK,
            read=lambda: read_incident_form(body, ids.HAND_OFF_BLOCK, ids.HAND_OFF_INPUT),
        )
        if form is None:
            return
        if not payloads.is_user_id(form.element.get("selected_user")):
            ack(response_action="errors", errors={ids.HAND_OFF_BLOCK: "Pick the new commander."})
            return
        ack()

    def run_hand_off(body: dict[str, Any]) -> None:
        try:
            form = read_incident_form(body, ids.HAND_OFF_BLOCK, ids.HAND_OFF_INPUT)
        except (MalformedPayload, TamperedMetadata):
            return  # the ack refused it inside the form
        to_user = form.element.get("selected_user")
        if not isinstance(to_user, str) or not payloads.is_user_id(to_user):
            return  # the form already said what to fix
        channel = None
        try:
            channel = incidents.get_incident(uow=deps.uow, incident_id=form.incident_id).channel_id
            workflows.hand_off(deps, channel_id=channel, to_user=to_user, by_user=form.user)
        except Exception as error:
            workflows.tell_privately(deps, form.user, user_message(error), channel)

    app.view(ids.HAND_OFF_VIEW)(ack=ack_hand_off, lazy=[run_hand_off])

    def ack_close(ack: Ack, body: dict[str, Any]) -> None:
        form = form_or_refused(
            ack,
            form="close",
            block=ids.RESOLUTION_BLOCK,
            read=lambda: read_incident_form(body, ids.RESOLUTION_BLOCK, ids.RESOLUTION_INPUT),
        )
        if form is None:
            return
        if not visible(_text(form.element)):
            ack(response_action="errors", errors={ids.RESOLUTION_BLOCK: "Say how it was resolved."})
            return
        ack()

    def run_close(body: dict[str, Any]) -> None:
        try:
            form = read_incident_form(body, ids.RESOLUTION_BLOCK, ids.RESOLUTION_INPUT)
        except (MalformedPayload, TamperedMetadata):
            return  # the ack refused it inside the form
        resolution = _text(form.element).strip()
        if not visible(resolution):
            return  # the form already said what to fix
        channel = None
        try:
            channel = incidents.get_incident(uow=deps.uow, incident_id=form.incident_id).channel_id
            lifecycle.close_incident(
                deps, channel_id=channel, user=form.user, resolution=resolution
            )
        except Exception as error:
            text = user_message(error, typed=resolution)
            workflows.tell_privately(deps, form.user, text, channel)

    app.view(ids.CLOSE_VIEW)(ack=ack_close, lazy=[run_close])


@dataclass(frozen=True)
class _IncidentForm:
    user: str
    incident_id: str
    element: dict[str, Any]


def _text(element: dict[str, Any]) -> str:
    value = element.get("value")
    return value if isinstance(value, str) else ""


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
