"""The emulator sends slash command text the way Slack does, per the manifest's should_escape.

Sources: https://api.slack.com/interactivity/slash-commands ("Escaping channels, users, and
links sent to your app": with escaping on, `@foo` arrives as `<@U…|foo>`, channels as
`<#C…|name>`, URLs wrapped in angle brackets) and
https://api.slack.com/reference/surfaces/formatting#escaping (`&`, `<`, `>` are sent as
`&amp;`, `&lt;`, `&gt;`; special mentions are `<!here>`, `<!channel>`, `<!everyone>`, user
groups `<!subteam^ID>`; a label follows a `|`).
"""

import pytest

from tests.emulators.slack import SlackEmulator
from tests.emulators.slack.command_text import as_slack_sends, manifest_escaping


@pytest.fixture(scope="module")
def slack() -> SlackEmulator:
    emulator = SlackEmulator()  # never started: only its workspace is used
    emulator.add_user("U0LEAD1", "linus")
    emulator.add_channel("war-room")
    emulator.add_usergroup("oncall", ["U0LEAD1"], group_id="S0ONCALL")
    return emulator


def test_the_manifest_escapes_incident_but_not_request_access_or_access() -> None:
    assert manifest_escaping() == {
        "/incident": True,
        "/request-access": False,
        "/access": False,
    }


def test_with_should_escape_mentions_channels_groups_and_links_arrive_as_markup(
    slack: SlackEmulator,
) -> None:
    war_room = slack.channel_by_name("war-room")
    assert war_room is not None
    typed = "p99 > 2s & rising, paged by @linus @oncall @here in #war-room, see https://x.example/a"
    assert as_slack_sends(typed, should_escape=True, workspace=slack.workspace) == (
        "p99 &gt; 2s &amp; rising, paged by <@U0LEAD1|linus> <!subteam^S0ONCALL|@oncall> "
        f"<!here> in <#{war_room.id}|war-room>, see <https://x.example/a>"
    )


def test_everyone_and_channel_become_special_mentions_and_unknown_names_stay_text(
    slack: SlackEmulator,
) -> None:
    sent = as_slack_sends(
        "@everyone @channel @nobody #nowhere", should_escape=True, workspace=slack.workspace
    )
    assert sent == "<!everyone> <!channel> @nobody #nowhere"


def test_without_should_escape_only_the_entities_change(slack: SlackEmulator) -> None:
    typed = "fix the <!channel> row & @linus @here #war-room https://x.example"
    assert as_slack_sends(typed, should_escape=False, workspace=slack.workspace) == (
        "fix the &lt;!channel&gt; row &amp; @linus @here #war-room https://x.example"
    )


def test_typed_entities_are_escaped_once_more(slack: SlackEmulator) -> None:
    """A user who types `&lt;` sends `&amp;lt;`: decoding once gives back what they typed."""
    assert as_slack_sends("&lt;", should_escape=True, workspace=slack.workspace) == "&amp;lt;"
