"""Slack's own escaping over signed HTTP: commands are sent the way Slack sends them (the
manifest's `should_escape` per command; https://api.slack.com/interactivity/slash-commands,
"Escaping channels, users, and links sent to your app", and
https://api.slack.com/reference/surfaces/formatting#escaping), and nothing the bot sends back
to Slack carries a special mention that came from user text."""

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

from tests.integration.test_slack_end_to_end import Scene, scene
from tests.pings import assert_nothing_pings
from tests.waiting import eventually

__all__ = ["scene"]  # the fixture, shared with the main end-to-end tests


def test_the_reported_title_mention_and_here_are_read_as_typed_and_never_ping(
    scene: Scene,
) -> None:
    slack = scene.slack
    opened = scene.command(
        "/incident", "open Ranker p99 over 2s, paged by @linus @here", "U0ONCALL1", scene.general
    )
    sent = parse_qs(opened.sent.decode())["text"][0]
    assert sent == "open Ranker p99 over 2s, paged by <@U0LEAD1|linus> <!here>"
    assert "paged by @linus @\u2060here" in opened.text  # the ack

    channel = scene.incident_channel()
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert channel.name == f"inc-{today}-ranker-p99-over-2s-paged-by-linus-here"
    card = slack.messages(channel.id)[0]
    assert card.blocks is not None
    assert card.blocks[0]["text"]["text"].endswith("· Ranker p99 over 2s, paged by @linus @here")
    channel.members.extend(["U0ONCALL2", "U0LEAD1", "U0SEC1"])

    scene.command(
        "/request-access",
        "feature-store-rw 1h fix the <!channel> & @everyone rows",
        "U0ONCALL2",
        channel.id,
    )
    request_card = scene.card(channel.id)
    assert "*Reason:* fix the &lt;!channel&gt; &amp; @\u2060everyone rows" in json.dumps(
        request_card.blocks, ensure_ascii=False
    )

    scene.command("/incident", "commander @linus", "U0ONCALL1", channel.id)
    eventually(lambda: slack.channel(channel.id).topic["value"].startswith("Commander: <@U0LEAD1>"))
    scene.command("/incident", "close fixed <b> & paged @channel", "U0LEAD1", channel.id)
    eventually(lambda: slack.channel(channel.id).archived)
    summary = next(m for m in slack.messages(channel.id) if "audit summary" in m.text)
    assert "*Resolution*\\nfixed &lt;b&gt; &amp; paged @\u2060channel" in json.dumps(
        summary.blocks, ensure_ascii=False
    )

    outbound = slack.outbound()
    assert_nothing_pings(outbound)
    everything = json.dumps(outbound, ensure_ascii=False)
    assert "U0LEAD1|linus" not in everything and "&amp;amp;" not in everything
