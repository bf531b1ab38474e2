"""Command text as Slack sends it: read once into plain text, shown back without markup or pings.

What Slack sends: https://api.slack.com/interactivity/slash-commands ("Escaping channels, users,
and links sent to your app") and https://api.slack.com/reference/surfaces/formatting#escaping.
The example is the reported one: `/incident open Ranker p99 over 2s, paged by @linus @here`
with `should_escape: true` arrives as `… paged by <@U0LEAD1|linus> <!here>`.
"""

import re
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.channel_name import MAX_CHANNEL_NAME
from bot.domain.errors import GatehouseError
from bot.domain.incident import Severity
from bot.domain.text import clean, visible
from bot.domain.wording import Person, Wording
from bot.slack.blocks import incident as incident_blocks
from bot.slack.blocks.home import home_view
from bot.slack.errors import user_message
from bot.slack.parsing import (
    HandOff,
    OpenIncident,
    parse_access_command,
    parse_incident_command,
    parse_request_text,
    split_break_glass,
)
from bot.slack.text import decode_entities, from_slack, mrkdwn, slack_message
from bot.slack.views import slack_deps
from tests.emulators.slack import SlackEmulator
from tests.emulators.slack.command_text import as_slack_sends
from tests.pings import assert_nothing_pings
from tests.unit.example_policy import oncall_example_policy
from tests.unit.fakes import FakeBroker, FakeChat, FakeDirectory, FakeOnCall, MemoryStore
from tests.unit.slack.scene import T0, Clock, chat

ISSUE_EXAMPLE = "open Ranker p99 over 2s, paged by @linus @here"
CHANNEL_NAME = re.compile(r"^inc-\d{8}-[a-z0-9]+(?:-[a-z0-9]+)*$")


def _workspace() -> SlackEmulator:
    slack = SlackEmulator()  # never started: only its workspace renders the text
    slack.add_user("U0LEAD1", "linus")
    slack.add_user("U0ONCALL2", "grace")
    slack.add_channel("war-room")
    slack.add_usergroup("ml-leads", ["U0LEAD1"], group_id="S0MLLEADS")
    return slack


SLACK = _workspace()


def sent_by_slack(typed: str, *, should_escape: bool) -> str:
    return as_slack_sends(typed, should_escape=should_escape, workspace=SLACK.workspace)


def fresh_deps() -> Deps:
    return slack_deps(
        uow=MemoryStore(),
        policy=oncall_example_policy(),
        broker=FakeBroker(),
        chat=FakeChat(),
        clock=Clock(),
        vault_addr="https://vault.example:8200",
        directory=FakeDirectory(),
        oncall=FakeOnCall(),
    )


# --- Reading Slack's format ----------------------------------------------------------------


def test_the_reported_title_reads_as_typed_without_ids() -> None:
    sent = sent_by_slack(ISSUE_EXAMPLE, should_escape=True)
    assert sent == "open Ranker p99 over 2s, paged by <@U0LEAD1|linus> <!here>"
    parsed = parse_incident_command(sent)
    assert parsed == OpenIncident("Ranker p99 over 2s, paged by @linus @here", Severity.SEV2)


def test_entities_are_decoded_exactly_once() -> None:
    assert from_slack("a &amp; b &lt;c&gt;") == "a & b <c>"
    assert from_slack("&amp;lt;") == "&lt;"  # the user typed `&lt;`
    assert decode_entities("&amp;amp;") == "&amp;"
    assert from_slack("&quot;x&#39;") == "&quot;x&#39;"  # Slack escapes only & < >


def test_markup_reads_as_what_slack_shows() -> None:
    assert from_slack("<@U0LEAD1|linus> <@U0LEAD1>") == "@linus @someone"
    assert from_slack("<#C0123|war-room> <#C0123>") == "#war-room #channel"
    assert from_slack("<!subteam^S0MLLEADS|@ml-leads> <!subteam^S0MLLEADS>") == "@ml-leads @group"
    assert from_slack("<!here> <!channel> <!everyone> <!here|here>") == (
        "@here @channel @everyone @here"
    )
    assert from_slack("<https://x.example/a?b=1&amp;c=2> <https://x.example|docs>") == (
        "https://x.example/a?b=1&c=2 docs"
    )
    assert from_slack("<!date^1700000000^{date}|Nov 14>") == "Nov 14"


def test_the_commander_is_read_from_the_mention_as_slack_sends_it() -> None:
    sent = sent_by_slack("commander @linus", should_escape=True)
    assert sent == "commander <@U0LEAD1|linus>"
    assert parse_incident_command(sent) == HandOff("U0LEAD1")


def test_access_reasons_are_plain_text() -> None:
    sent = sent_by_slack("extend R-ABCDEFGH 30m a & b <!here>", should_escape=False)
    assert parse_access_command(sent).reason == "a & b <!here>"


# --- Showing it back -------------------------------------------------------------------------


def test_mrkdwn_makes_user_text_inert_and_readable() -> None:
    shown = mrkdwn("paged by @linus @here <!channel> & @Everyone")
    assert shown == "paged by @linus @\u2060here &lt;!channel&gt; &amp; @\u2060Everyone"


def test_messages_keep_our_mentions_and_show_echoed_markup_as_text() -> None:
    message = Wording(
        "Only ",
        Person("U0ONCALL2"),
        " can extend; '1h<!here>' is not a duration; a &lt;b&gt; & c; '<@U0LEAD1>' @here",
    )
    assert slack_message(message) == (
        "Only <@U0ONCALL2> can extend; '1h&lt;!here&gt;' is not a duration; a &lt;b&gt; &amp; "
        "c; '&lt;@U0LEAD1&gt;' @\u2060here"
    )


def test_the_reported_incident_is_named_and_shown_without_markup_or_pings() -> None:
    deps = fresh_deps()
    parsed = parse_incident_command(sent_by_slack(ISSUE_EXAMPLE, should_escape=True))
    assert isinstance(parsed, OpenIncident) and parsed.title is not None
    ack = incident_blocks.opening(parsed.title)
    incident = workflows.open_incident(
        deps, title=parsed.title, severity=parsed.severity, opener="U0ONCALL1"
    )

    assert incident.channel_name == "inc-20261123-ranker-p99-over-2s-paged-by-linus-here"
    card = next(args for method, args in chat(deps).calls if method == "chat.postMessage")
    assert card["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": f"🚨 {incident.id} · Ranker p99 over 2s, paged by @linus @here",
    }
    shown_title = "Ranker p99 over 2s, paged by @linus @\u2060here"  # readable, never pings
    assert card["text"] == (
        f"🚨 {incident.id} · {shown_title} · SEV2 · commander <@{incident.commander_id}>"
    )
    assert ack == f"Opening an incident channel for “{shown_title}”…"
    home = home_view(to_decide=[], active=[], incidents=[incident], now=T0)
    status = incident_blocks.status_text(incident, 0, 0)
    assert_nothing_pings([chat(deps).calls, ack, home, status])


def test_an_unknown_verb_is_echoed_as_text() -> None:
    sent = sent_by_slack("@here now", should_escape=True)
    try:
        parse_incident_command(sent)
    except GatehouseError as error:
        refusal = user_message(error, typed=f"/incident {from_slack(sent)}")
    assert "`@\u2060here` is not an /incident command" in refusal
    assert_nothing_pings(refusal)


# --- Any text -------------------------------------------------------------------------------

FRAGMENTS = [
    "@linus",
    "@grace",
    "@ml-leads",
    "@here",
    "@channel",
    "@everyone",
    "#war-room",
    "<!here>",
    "<!channel|channel>",
    "<@U0LEAD1|linus>",
    "<!subteam^S0MLLEADS>",
    "&",
    "&amp;",
    "&lt;",
    "<",
    ">",
    "https://x.example/?a=1&b=2",
    "🚨",
    "👩🏽‍💻",
    "\u200b",
    "\u202e",
    "\u2066",
    "\u2060",
    "\ufeff",
    "café",
    "Ω≈ç",
    "x" * 90,
    "-" * 40,
    "sev1",
    "1h",
]
user_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=12).map(
    " ".join
)


@settings(max_examples=300, deadline=None)
@given(user_text, st.booleans())
def test_the_bot_reads_exactly_what_the_user_typed(typed: str, should_escape: bool) -> None:
    assert from_slack(sent_by_slack(typed, should_escape=should_escape)) == typed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_text)
@example("G\x1bT")  # a control character inside a word: the reader sees, and the slug says, "gt"
@example("G÷T")  # a sign between letters: the slug keeps the letters, "gt"
def test_any_incident_title_makes_a_valid_channel_and_nothing_that_pings(typed: str) -> None:
    deps = fresh_deps()
    sent = sent_by_slack(f"open {typed}", should_escape=True)
    shown: list[Any] = []
    try:
        parsed = parse_incident_command(sent)
        assert isinstance(parsed, OpenIncident)
        if parsed.title is None:
            return
        shown.append(incident_blocks.opening(parsed.title))
        incident = workflows.open_incident(
            deps, title=parsed.title, severity=parsed.severity, opener="U0ONCALL1"
        )
    except GatehouseError as error:
        shown.append(user_message(error, typed=f"/incident {from_slack(sent)}"))
    else:
        name = incident.channel_name
        assert CHANNEL_NAME.match(name) and len(name) <= MAX_CHANNEL_NAME, name
        readable = visible(clean(typed)).lower()  # what the user sees of what they typed
        # Its letters and digits only, as the channel name keeps them ("g÷t" gives "gt").
        kept = re.sub(r"[^a-z0-9]", "", readable)
        for leftover in ("u0lead1", "s0mlleads", "amp", "lt", "gt"):  # unless typed as such
            if leftover not in kept:
                assert leftover not in name.split("-"), name
        shown.append(incident_blocks.status_text(incident, 1, 0))
        shown.append(home_view(to_decide=[], active=[], incidents=[incident], now=T0))
    shown.append(chat(deps).calls)
    assert_nothing_pings(shown)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_text, st.sampled_from(["", "30m ", "1h "]))
def test_any_access_reason_is_filed_or_refused_and_nothing_pings(typed: str, ttl: str) -> None:
    assume("--break-glass" not in typed.lower())  # that card pings on purpose
    deps = fresh_deps()
    incident = workflows.open_incident(
        deps, title="Drift", severity=Severity.SEV3, opener="U0ONCALL1"
    )
    sent = sent_by_slack(f"inference-logs-ro {ttl}{typed}", should_escape=False)
    text = from_slack(sent)
    shown: list[Any] = []
    try:
        text, break_glass = split_break_glass(text)
        resource, duration, reason = parse_request_text(text)
        request_id = workflows.file_request(
            deps,
            channel_id=incident.channel_id,
            user="U0ONCALL2",
            resource=resource,
            duration=duration,
            reason=reason,
            break_glass=break_glass,
        )
    except GatehouseError as error:
        shown.append(user_message(error, typed=f"/request-access {text}"))
    else:
        assert request_id.startswith("R-")
    shown.append(chat(deps).calls)
    assert_nothing_pings(shown)
