"""Refusals through the real listeners: the people the domain names are shown as mentions, in
the same words as ever, while the records and the logs keep plain user ids."""

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.errors import ChatError
from bot.domain.incident import Severity
from bot.slack import ids
from tests.unit.fakes import FakeDirectory
from tests.unit.slack.listening import Listeners, Replies
from tests.unit.slack.scene import approve, chat, filed


def refusal(said: Replies) -> str:
    """What a refused command was told, without the command repeated after it."""
    first, *_ = said.text.splitlines()
    return first


def ephemeral_to(deps: Deps, user: str) -> str:
    method, told = chat(deps).calls[-1]
    assert method == "chat.postEphemeral" and told["user"] == user
    return str(told["text"])


def test_a_non_approver_is_told_who_can_decide(deps: Deps) -> None:
    channel, request_id = filed(deps)
    Listeners(deps).click(ids.APPROVE, request_id, user="U0SEC1", channel=channel)
    assert ephemeral_to(deps, "U0SEC1") == (
        "⚠️ You are not an approver for inference-logs-ro. "
        "It can be decided by <@U0LEAD1>, <@U0LEAD2>, <@U0LEAD3>."
    )


def test_only_the_requester_may_cancel_and_the_others_are_told_who(deps: Deps) -> None:
    channel, request_id = filed(deps)
    said = Listeners(deps).run_command(
        "/access", f"cancel {request_id}", user="U0LEAD1", channel=channel
    )
    assert refusal(said) == f"⚠️ Only <@U0ONCALL2> can cancel request {request_id}."


def test_who_may_revoke_is_named(deps: Deps) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    said = Listeners(deps).run_command(
        "/access", f"revoke {request_id}", user="U0SEC1", channel=channel
    )
    assert refusal(said) == (
        "⚠️ Only the requester <@U0ONCALL2>, the commander <@U0ONCALL1> or an approver of "
        "inference-logs-ro can revoke it."
    )


def test_the_commander_is_named_to_whoever_may_not_close_or_hand_off(deps: Deps) -> None:
    channel, _ = filed(deps)
    listeners = Listeners(deps)
    closing = listeners.run_command("/incident", "close fixed", user="U0LEAD1", channel=channel)
    assert refusal(closing) == (
        "⚠️ Only the commander <@U0ONCALL1> or an incident admin can close this incident."
    )
    handing = listeners.run_command(
        "/incident", "commander <@U0LEAD2>", user="U0LEAD1", channel=channel
    )
    assert refusal(handing) == (
        "⚠️ Only the commander <@U0ONCALL1> or an incident admin can hand off."
    )
    again = listeners.run_command(
        "/incident", "commander <@U0ONCALL1>", user="U0ONCALL1", channel=channel
    )
    assert refusal(again) == "⚠️ <@U0ONCALL1> is already the commander."


def test_a_commander_who_cannot_act_is_named(deps: Deps) -> None:
    channel, _ = filed(deps)
    said = Listeners(deps).run_command(
        "/incident", "commander <@USLACKBOT>", user="U0ONCALL1", channel=channel
    )
    assert refusal(said) == (
        "⚠️ <@USLACKBOT> cannot be the commander: name an active member of the workspace "
        "(not a bot, an app or a deactivated account)."
    )


def test_someone_else_asking_to_extend_is_told_who_may(deps: Deps) -> None:
    channel, request_id = filed(deps)
    approve(deps, request_id)
    said = Listeners(deps).run_command(
        "/access", f"extend {request_id} 30m more time", user="U0LEAD1", channel=channel
    )
    assert refusal(said) == f"⚠️ Only <@U0ONCALL2> can extend request {request_id}."
    Listeners(deps).click(ids.EXTEND, request_id, user="U0LEAD1", channel=channel)
    assert ephemeral_to(deps, "U0LEAD1") == f"⚠️ Only <@U0ONCALL2> can extend {request_id}."


def test_a_refused_filing_keeps_its_lookup_notes(deps: Deps) -> None:
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    assert isinstance(deps.directory, FakeDirectory)
    deps.directory.failure = ChatError("Slack is down")
    said = Listeners(deps).run_command(
        "/request-access",
        "serving-cluster-exec 30m look at the pods",
        user="U0LEAD1",
        channel=incident.channel_id,
    )
    assert "⚠️ Only members of " in said.text
    assert "can request serving-cluster-exec. (Some groups could not be checked just now" in (
        said.text
    )
    assert "Slack is down" not in said.text  # the details are the operators'
