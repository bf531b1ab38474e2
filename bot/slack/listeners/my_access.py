"""/access: list, cancel, revoke, extend."""

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.errors import GatehouseError
from bot.services import access
from bot.slack import extending, payloads, workflows
from bot.slack.blocks import access as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.guard import command_or_sorry
from bot.slack.parsing import parse_access_command
from bot.slack.payloads import MalformedPayload, SlashCommand
from bot.slack.text import from_slack
from bot.slack.workflows import Deps


def register(app: App, deps: Deps) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        received = command_or_sorry(ack, command)
        if received is None:
            return
        text = received.text
        try:
            parse_access_command(text)
        except Exception as error:
            typed = f"/access {from_slack(text)}"
            ack(text=f"{user_message(error, typed=typed)}\n{blocks.ACCESS_USAGE}")
            return
        ack()

    def run_command(command: dict[str, Any], respond: Respond) -> None:
        try:
            typed = payloads.read(SlashCommand, command)
        except MalformedPayload:
            return  # the ack already said so
        text, user = typed.text, typed.user_id
        try:
            parsed = parse_access_command(text)
        except GatehouseError:
            return  # the ack already told the user what to fix
        try:
            if parsed.verb == "list":
                mine = access.list_my_access(uow=deps.uow, user=user)
                respond(
                    text=blocks.my_access(mine.pending, mine.active, mine.to_decide, deps.clock()),
                    response_type="ephemeral",
                )
                return
            assert parsed.request_id is not None
            if parsed.verb == "extend":
                assert parsed.duration is not None
                extending.ask(
                    deps,
                    request_id=parsed.request_id,
                    user=user,
                    duration=parsed.duration,
                    reason=parsed.reason,
                )
                respond(
                    text=f"Asked to extend {parsed.request_id} by {parsed.duration}; "
                    "an approver decides on its card.",
                    response_type="ephemeral",
                )
            elif parsed.verb == "cancel":
                workflows.cancel(deps, request_id=parsed.request_id, user=user)
                respond(text=f"Cancelled {parsed.request_id}.", response_type="ephemeral")
            else:
                workflows.revoke(deps, request_id=parsed.request_id, user=user)
                respond(text=f"Revoked {parsed.request_id}.", response_type="ephemeral")
        except Exception as error:
            as_typed = f"/access {from_slack(text)}"
            respond(text=user_message(error, typed=as_typed), response_type="ephemeral")

    app.command("/access")(ack=ack_command, lazy=[run_command])
