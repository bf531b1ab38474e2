"""What the bot says: each outcome in one sentence naming its resource, person and cause;
every message and view within Slack's limits whatever it is drawn from; the gallery current."""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.access import BREAK_GLASS_DENIED, CLOSE_REASON, RequestEnd, RequestState
from bot.slack.blocks import messages
from bot.slack.blocks.text import clip, clip_list, mentions
from tests.emulators.slack.blocks import check_message_blocks, check_view
from tests.tools import gallery
from tests.tools.gallery import Sample, Shown, _deny, _ended, _request, scenes

REPO = Path(__file__).resolve().parents[3]
UPDATE_TEXT_LIMIT = 4000  # chat.update refuses a longer `text` (chat.postMessage: 40,000)
RESOURCE = "inference-logs-ro"
LEAD, REQUESTER = "U0LEAD1", "U0ONCALL2"
TIMEOUT = timedelta(minutes=30)
_TOKEN = re.compile(r"<[^<>]*>")

# Each way a request ends, and the words that say why.
ENDINGS: list[tuple[RequestState, str, str | None, RequestEnd, str]] = [
    (RequestState.DENIED, "denied: not now", LEAD, RequestEnd.DENIED, f"<@{LEAD}> denied"),
    (
        RequestState.CANCELLED,
        "cancelled by requester",
        REQUESTER,
        RequestEnd.CANCELLED,
        "cancelled",
    ),
    (
        RequestState.TIMED_OUT,
        "nobody decided in time",
        None,
        RequestEnd.TIMED_OUT,
        "nobody decided within 30m",
    ),
    (
        RequestState.FAILED,
        "issue failed: permission denied",
        None,
        RequestEnd.FAILED,
        "Vault could not issue",
    ),
    (RequestState.EXPIRED, "expired", None, RequestEnd.EXPIRED, "it expired at"),
    (RequestState.REVOKED, f"revoked by {LEAD}", LEAD, RequestEnd.REVOKED, f"<@{LEAD}> revoked it"),
    (
        RequestState.REVOKED,
        CLOSE_REASON,
        "U0ONCALL1",
        RequestEnd.INCIDENT_CLOSED,
        "the incident was closed",
    ),
    (
        RequestState.CANCELLED,
        CLOSE_REASON,
        "U0ONCALL1",
        RequestEnd.INCIDENT_CLOSED,
        "the incident was closed",
    ),
    (
        RequestState.REVOKED,
        f"{BREAK_GLASS_DENIED} by {LEAD}: not now",
        LEAD,
        RequestEnd.BREAK_GLASS_DENIED,
        f"<@{LEAD}> denied it on review",
    ),
    (
        RequestState.REVOKED,
        "the credential was never delivered (Gatehouse stopped first); request access again",
        None,
        RequestEnd.UNDELIVERED,
        "never delivered",
    ),
]


def test_every_outcome_sentence_names_its_resource_person_and_cause_once() -> None:
    for state, reason, by, cause, says in ENDINGS:
        request = _ended(Sample(), state, reason, by, decisions=[_deny(LEAD, "not now")])
        assert request.end_cause is cause, reason
        reply = messages.told_channel(request, timeout=TIMEOUT)
        dm = messages.told_privately(request, timeout=TIMEOUT)
        card = messages.ended(request, messages.about_requester(request), timeout=TIMEOUT)
        for sentence in (reply, dm, card):
            assert sentence.count(f"`{RESOURCE}`") == 1, sentence
            assert says in sentence, sentence
            assert f"({state.value})" not in sentence and f"({reason})" not in sentence
        # Named on the card; never pinged by the thread reply, which the DM would repeat.
        assert card.count(f"<@{REQUESTER}>") == 1, card
        assert f"<@{REQUESTER}>" not in reply and f"<@{REQUESTER}>" not in dm, (reply, dm)
        text = messages.card_text(request, timeout=TIMEOUT)
        assert text.startswith(f"<@{REQUESTER}> asks for `{RESOURCE}` (1h): "), text
        assert says.replace("you ", "") in text or cause is RequestEnd.CANCELLED, text


def test_break_glass_is_never_said_to_be_approved() -> None:
    for state in (RequestState.APPROVED, RequestState.ACTIVE):
        request = _request(Sample(), state=state, break_glass=True, ends_at=gallery.T0)
        for retrying in (False, True):
            text = messages.card_text(request, retrying=retrying, timeout=TIMEOUT)
            line = messages.status_line(
                request, messages.about_requester(request), retrying=retrying, timeout=TIMEOUT
            )
            assert "pproved" not in line.replace("without approval", ""), line
            assert "without approval" in text and "without approval" in line


def test_clip_never_cuts_a_mention_a_date_or_an_escape() -> None:
    text = "a" * 10 + "<@U0LEAD1> &amp; <!date^1^{time}|10:05>"
    for limit in range(1, len(text)):
        clipped = clip(text, limit)
        assert len(clipped) <= limit and clipped.endswith("…")
        assert _whole(clipped), clipped
    # A ZWJ emoji (three code points) stays whole: kept, or dropped.
    assert [clip("👩‍🚒👩‍🚒", limit) for limit in (3, 4, 5)] == ["…", "👩‍🚒…", "👩‍🚒…"]


def test_a_long_list_says_how_many_it_leaves_out() -> None:
    people = [f"U{n:08d}" for n in range(300)]
    shown = mentions(people, limit=200)
    assert len(shown) <= 200 and shown.endswith(" more") and _whole(shown)
    left = int(shown.rsplit(" and ", 1)[1].split()[0])
    assert shown.count("<@") + left == 300
    assert clip_list([], none="nobody") == "nobody"


def _whole(text: str) -> bool:
    """Every `<…>` token and `&…;` escape complete: nothing left half open."""
    rest = _TOKEN.sub("", text)
    return "<" not in rest and ">" not in rest and not re.search(r"&[a-z]*…$", text)


_NAME = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._"), min_size=1, max_size=149
).map(lambda tail: "r" + tail)
_PIECES = [*"ab <>&*_~`@|:é\u0301🚨", "👩\u200d🚒", "@here", "<!channel>", "&amp;"]
_WORDS = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=120).map(
    lambda pieces: "".join(pieces)[:500].strip() or "x"
)
_SAMPLES = st.builds(
    Sample,
    resource=_NAME,
    glass_resource=_NAME,
    description=_WORDS.map(lambda w: w[:200]),
    title=_WORDS.map(lambda w: w[:150]),
    reason=_WORDS,
    approvers=st.integers(min_value=2, max_value=300).map(
        lambda n: tuple(f"U{i:010d}" for i in range(n))
    ),
    group_label=st.text(st.sampled_from("abc-@"), min_size=1, max_size=80),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=_SAMPLES)
def test_every_message_and_view_stays_within_slacks_limits(sample: Sample) -> None:
    for shown in scenes(sample):
        assert _problems(shown) == [], shown.title


def test_the_extremes_the_issue_names_stay_within_slacks_limits() -> None:
    """300 approvers, a 150-character name, an emoji title: the break-glass card's text was
    past chat.update's 4,000 characters at about 240 approvers."""
    sample = Sample(
        resource="r" * 150,
        glass_resource="g" * 150,
        title="🚨" * 150,
        reason="<@U1> &amp; " * 40,
        approvers=tuple(f"U{i:010d}" for i in range(300)),
    )
    for shown in scenes(sample):
        assert _problems(shown) == [], shown.title


def _problems(shown: Shown) -> list[str]:
    if shown.surface in ("modal", "home"):
        return check_view(shown.view, (shown.surface,))
    problems = check_message_blocks(shown.blocks) if shown.blocks else []
    if not shown.text or len(shown.text) > UPDATE_TEXT_LIMIT:
        problems.append(f"text of {len(shown.text)} characters")
    if not _whole(shown.text):
        problems.append(f"a token cut in two: {shown.text[-80:]}")
    return problems + [p for block in shown.blocks for p in _cut_tokens(block)]


def _cut_tokens(node: Any) -> list[str]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and not _whole(str(node.get("text", ""))):
            return [f"a token cut in two: {str(node['text'])[-80:]}"]
        return [p for value in node.values() for p in _cut_tokens(value)]
    if isinstance(node, list):
        return [p for item in node for p in _cut_tokens(item)]
    return []


def test_the_gallery_is_current() -> None:
    committed = (REPO / "docs" / "messages.md").read_text(encoding="utf-8")
    assert committed == gallery.markdown(), (
        f"docs/messages.md is stale: run `make docs` (or `{gallery.REGENERATE}`)"
    )


def test_a_gallery_link_opens_the_payload_in_block_kit_builder() -> None:
    card = next(shown for shown in scenes(Sample()) if shown.title.startswith("Request card"))
    link = gallery.builder_link(card)
    assert link.startswith("https://app.slack.com/block-kit-builder/#%7B%22blocks%22")
