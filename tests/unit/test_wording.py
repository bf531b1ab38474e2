"""Messages that name people: plain user ids for logs and the CLI, mentions in Slack, and no
Slack markup written below the Slack adapter."""

import re
from pathlib import Path

import pytest

from bot.domain.access import NOBODY_DECIDES, Approvals, Verdict
from bot.domain.errors import GatehouseError, NotAllowed
from bot.domain.wording import People, Person, Wording
from bot.slack.errors import user_message
from bot.slack.text import mention_list, slack_message
from tests.unit.test_approvals import T0

ROOT = Path(__file__).resolve().parents[2]
BELOW_SLACK = ("bot/domain", "bot/services", "bot/app", "bot/policy")
# Slack's mention markup: a user `<@U…>`, a channel `<#C…>`, a group or `<!here>`.
SLACK_MENTION = re.compile(r"<[@#!]")


def test_plain_rendering_shows_people_as_their_user_ids() -> None:
    wording = Wording(
        "Only ",
        Person("U2"),
        " or ",
        People.of(["U3", "U1", "U3"], none="nobody"),
        " can.",
    )
    assert str(wording) == "Only U2 or U1, U3 can."
    error = NotAllowed(wording)
    assert error.message == str(error) == "Only U2 or U1, U3 can."
    assert error.wording == wording


def test_slack_rendering_shows_people_as_mentions() -> None:
    wording = Wording("Only ", Person("U2"), " or ", People.of(["U3", "U1"], none="nobody"), ".")
    assert slack_message(wording) == "Only <@U2> or <@U1>, <@U3>."
    assert user_message(NotAllowed(wording)) == "⚠️ Only <@U2> or <@U1>, <@U3>."


def test_nobody_is_said_in_words_both_ways() -> None:
    wording = Wording("It can be decided by ", People.of([], none=NOBODY_DECIDES), ".")
    assert str(wording) == "It can be decided by nobody (ask a policy admin)."
    assert slack_message(wording) == "It can be decided by nobody (ask a policy admin)."
    assert mention_list([], none=NOBODY_DECIDES) == NOBODY_DECIDES
    assert mention_list(["U2", "U1"], none=NOBODY_DECIDES) == "<@U1>, <@U2>"


def test_a_decision_nobody_may_take_still_says_who_to_ask() -> None:
    rule = Approvals(required=1, eligible=frozenset({"UASKER"}), asker="UASKER")
    with pytest.raises(NotAllowed) as refused:
        rule.decide(
            [],
            subject_id="R-1",
            approver_id="USTRANGER",
            verdict=Verdict.APPROVE,
            reason=None,
            now=T0,
            already="already",
            own="own",
            not_approver="You are not an approver.",
        )
    said = "You are not an approver. It can be decided by nobody (ask a policy admin)."
    assert refused.value.message == said
    assert user_message(refused.value) == f"⚠️ {said}"


def test_a_plain_string_error_reads_as_before() -> None:
    error = GatehouseError("Request R-1 is already approved.")
    assert error.message == "Request R-1 is already approved."
    assert error.wording == Wording("Request R-1 is already approved.")
    assert slack_message(error.wording) == "Request R-1 is already approved."


def test_words_are_never_read_as_a_template() -> None:
    """Echoed user text may hold braces, `$` or markup: it is shown, not interpreted."""
    wording = Wording("'{user} $who <@U9>' is not a duration; ", Person("U1"), " asked.")
    assert str(wording) == "'{user} $who <@U9>' is not a duration; U1 asked."
    assert slack_message(wording) == "'{user} $who &lt;@U9&gt;' is not a duration; <@U1> asked."


def test_wordings_add_up_with_words_on_either_side() -> None:
    refusal = Wording("Only ", Person("U1"), " may.")
    noted = refusal + " (Note: a lookup failed.)"
    assert noted == Wording("Only ", Person("U1"), " may.", " (Note: a lookup failed.)")
    assert str("⚠️ " + noted) == "⚠️ Only U1 may. (Note: a lookup failed.)"
    assert refusal + Wording(Person("U2")) == Wording("Only ", Person("U1"), " may.", Person("U2"))
    assert Wording("", "x", "") == Wording("x")


@pytest.mark.parametrize("package", BELOW_SLACK)
def test_no_slack_mention_markup_is_written_below_the_slack_adapter(package: str) -> None:
    """The domain, the services, the application and the policy name people with `Person`
    and `People`; only the Slack adapter decides a person is shown as `<@U…>`."""
    sources = sorted((ROOT / package).rglob("*.py"))
    assert sources, f"no sources under {package}"
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SLACK_MENTION.search(line)
    ]
    assert found == []
