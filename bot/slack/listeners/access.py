"""/request-access (text or form)."""

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.access import parse_request_text, split_break_glass
from bot.domain.durations import parse_duration
from bot.domain.errors import GatehouseError, NotAllowed
from bot.domain.text import visible
from bot.slack import ids, workflows
from bot.slack.blocks import access as blocks
from bot.slack.errors import unknown_resource, user_message
from bot.slack.text import from_slack
from bot.slack.workflows import Deps


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

    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        text = from_slack(command.get("text", ""))
        if not text.strip():
            ack()
            return
        try:
            check(text)
        except GatehouseError as error:
            typed = f"/request-access {text}"
            ack(text=f"{user_message(error, typed=typed)}\n{blocks.REQUEST_USAGE}")
            return
        ack()

    def run_command(command: dict[str, Any], respond: Respond) -> None:
        text = from_slack(command.get("text", ""))
        user, channel = command["user_id"], command["channel_id"]
        try:
            if not text.strip():
                rules = list(deps.policy.resources.values())
                deps.chat.open_view(command["trigger_id"], blocks.request_modal(rules, channel))
                return
            try:
                resource, duration, reason, break_glass = check(text)
            except GatehouseError:
                return  # the ack already told the user what to fix
            workflows.file_request(
                deps,
                channel_id=channel,
                user=user,
                resource=resource,
                duration=duration,
                reason=reason,
                break_glass=break_glass,
            )
        except Exception as error:
            respond(
                text=user_message(error, typed=f"/request-access {text}"),
                response_type="ephemeral",
            )

    app.command("/request-access")(ack=ack_command, lazy=[run_command])

    def ack_form(ack: Ack, view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        reason = values.get(ids.REASON_BLOCK, {}).get(ids.REASON_INPUT, {}).get("value") or ""
        if not visible(reason):
            ack(response_action="errors", errors={ids.REASON_BLOCK: "Say why you need access."})
            return
        resource = (
            values.get(ids.RESOURCE_BLOCK, {}).get(ids.RESOURCE_INPUT, {}).get("selected_option")
            or {}
        ).get("value")
        rule = deps.policy.resources.get(resource or "")
        if _break_glass_ticked(values) and rule is not None:
            try:
                rule.granted_duration(None, break_glass=True)
            except NotAllowed as refused:
                ack(response_action="errors", errors={ids.BREAK_GLASS_BLOCK: refused.message})
                return
        ack()

    def run_form(view: dict[str, Any], body: dict[str, Any]) -> None:
        values = view["state"]["values"]
        user, channel = body["user"]["id"], view["private_metadata"]
        resource = values[ids.RESOURCE_BLOCK][ids.RESOURCE_INPUT]["selected_option"]["value"]
        picked = values.get(ids.DURATION_BLOCK, {}).get(ids.DURATION_INPUT, {})
        duration = (picked.get("selected_option") or {}).get("value")
        reason = values[ids.REASON_BLOCK][ids.REASON_INPUT]["value"]
        if not visible(reason or ""):
            return  # the form already said what to fix
        try:
            workflows.file_request(
                deps,
                channel_id=channel,
                user=user,
                resource=resource,
                duration=duration,
                reason=reason,
                break_glass=_break_glass_ticked(values),
            )
        except Exception as error:
            workflows.tell_privately(deps, user, user_message(error, typed=reason), channel)

    app.view(ids.REQUEST_ACCESS_VIEW)(ack=ack_form, lazy=[run_form])


def _break_glass_ticked(values: dict[str, Any]) -> bool:
    picked = values.get(ids.BREAK_GLASS_BLOCK, {}).get(ids.BREAK_GLASS_INPUT, {})
    return bool(picked.get("selected_options"))
