"""/access: list, cancel, revoke, extend."""

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.app import extending, workflows
from bot.app.deps import Deps
from bot.domain.errors import GatehouseError
from bot.domain.grant import Grant
from bot.services import access
from bot.slack import payloads
from bot.slack.blocks import access as blocks
from bot.slack.errors import user_message
from bot.slack.listeners.guard import command_or_sorry
from bot.slack.parsing import parse_access_command
from bot.slack.payloads import MalformedPayload, SlashCommand
from bot.slack.text import from_slack

# What the ack committed, for the work after it (Bolt copies the context to the lazy
# functions once the ack function has returned).
CANCELLED = "gatehouse_cancelled"
REVOKED = "gatehouse_revoked"
ANSWERED = "gatehouse_answered"


def register(app: App, deps: Deps) -> None:
    def ack_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        """A cancel or a revoke is committed before Slack is answered, and the answer says
        so; when it is refused or the database fails, the answer says that instead."""
        received = command_or_sorry(ack, command)
        if received is None:
            return
        text = received.text
        typed = f"/access {from_slack(text)}"
        try:
            parsed = parse_access_command(text)
        except Exception as error:
            ack(text=f"{user_message(error, typed=typed)}\n{blocks.ACCESS_USAGE}")
            return
        if parsed.verb not in ("cancel", "revoke") or parsed.request_id is None:
            ack()
            return
        user = received.user_id
        try:
            if parsed.verb == "cancel":
                cancelled = workflows.record_cancel(deps, request_id=parsed.request_id, user=user)
                context[CANCELLED] = cancelled
                answer = f"Cancelled {cancelled.id}."
            else:
                grant = workflows.record_revoke(deps, request_id=parsed.request_id, user=user)
                if grant is None:  # busy: revoked after the ack, once its worker is done
                    ack()
                    return
                context[REVOKED] = grant
                answer = f"Revoked {grant.request_id}."
        except Exception as error:  # refused, or the database failed: nothing was recorded
            context[ANSWERED] = True
            ack(text=user_message(error, typed=typed))
            return
        context[ANSWERED] = True
        ack(text=answer)

    def run_command(command: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        try:
            typed = payloads.read(SlashCommand, command)
        except MalformedPayload:
            return  # the ack already said so
        if context.get(ANSWERED):
            follow_up_committed(context, respond)
            return
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
                    text=f"Asked to extend {parsed.request_id} by {parsed.duration}; each "
                    "approver who may decide has it as a task, and you hear how it went by DM.",
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

    def follow_up_committed(context: BoltContext, respond: Respond) -> None:
        """After a cancel or revoke the ack committed: the card, Vault, the thread."""
        try:
            if CANCELLED in context:
                workflows.after_cancel(deps, context[CANCELLED])
            elif REVOKED in context:
                grant: Grant = context[REVOKED]
                workflows.after_revoke(deps, request_id=grant.request_id)
        except Exception as error:
            respond(text=user_message(error), response_type="ephemeral")

    app.command("/access")(ack=ack_command, lazy=[run_command])
