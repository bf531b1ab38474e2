"""The Slack emulator, driven through the real slack_sdk WebClient and a real Bolt app."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
import uvicorn
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.domain.errors import ChatError, ChatUnavailable
from integrations.slack_web import SlackChat
from tests.emulators.slack import SendOptions, SlackClient, SlackEmulator, running_slack
from tests.emulators.slack.signing import verify
from tests.emulators.slack.spec import all_specs

ALICE, BOB = "U0ALICE0001", "U0BOB000002"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with running_slack() as emulator:
        emulator.add_user(ALICE, "alice", "alice@example.com")
        emulator.add_user(BOB, "bob", "bob@example.com")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(base_url=slack.api_url, token=slack.bot_token)


def api_error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data = caught.value.response.data
    assert isinstance(data, dict)
    return data


def incident_channel(web: WebClient, name: str = "inc-42") -> str:
    channel = str(web.conversations_create(name=name)["channel"]["id"])
    web.conversations_invite(channel=channel, users=[ALICE])
    return channel


# -- auth and method lookup -----------------------------------------------------------------------


def test_auth_errors(slack: SlackEmulator) -> None:
    assert api_error(WebClient(base_url=slack.api_url).auth_test)["error"] == "not_authed"
    bad = WebClient(base_url=slack.api_url, token="xoxb-wrong")
    assert api_error(bad.auth_test)["error"] == "invalid_auth"
    form = httpx.post(slack.api_url + "auth.test", data={"token": slack.bot_token})
    assert form.json()["ok"] is True and form.json()["user_id"] == slack.bot_user_id
    json_token = httpx.post(slack.api_url + "auth.test", json={"token": slack.bot_token})
    assert json_token.json()["error"] == "not_authed"  # JSON bodies take the token from the header
    slack.revoke_token()
    good = WebClient(base_url=slack.api_url, token=slack.bot_token)
    assert api_error(good.auth_test)["error"] == "token_revoked"


def test_auth_test_shape_and_unknown_method(web: WebClient, slack: SlackEmulator) -> None:
    body = web.auth_test().data
    assert isinstance(body, dict)
    assert {"url", "team", "user", "team_id", "user_id", "bot_id"} <= body.keys()
    assert body["team_id"] == slack.team_id and body["bot_id"] == slack.bot_id
    assert api_error(lambda: web.api_call("chat.sendTelepathically"))["error"] == "unknown_method"


def test_calls_are_recorded_in_order_with_token_redacted(
    web: WebClient, slack: SlackEmulator
) -> None:
    web.auth_test()
    httpx.post(slack.api_url + "auth.test", data={"token": slack.bot_token})
    assert slack.methods_called() == ["auth.test", "auth.test"]
    assert slack.calls[1].args == {"token": "<redacted>"}
    assert slack.bot_token not in json.dumps([c.args for c in slack.calls])


# -- argument validation from the method specs ----------------------------------------------------


def test_missing_required_arguments(web: WebClient) -> None:
    assert api_error(lambda: web.api_call("chat.postMessage", json={"text": "x"}))["error"] == (
        "channel_not_found"
    )
    channel = incident_channel(web)
    missing = api_error(lambda: web.api_call("conversations.invite", params={"channel": channel}))
    assert missing["error"] == "invalid_arguments"
    assert missing["response_metadata"]["messages"] == ["[ERROR] missing required field: users"]
    with pytest.warns(UserWarning, match="text"):  # slack_sdk's own client-side warning
        assert api_error(lambda: web.chat_postMessage(channel=channel))["error"] == "no_text"
    assert api_error(lambda: web.api_call("conversations.create"))["error"] == (
        "invalid_name_required"
    )


def test_wrong_types_are_invalid_arguments(web: WebClient) -> None:
    wrong_bool = api_error(
        lambda: web.api_call("conversations.create", params={"name": "t", "is_private": "maybe"})
    )
    assert wrong_bool["error"] == "invalid_arguments"
    assert "[json-pointer:/is_private]" in wrong_bool["response_metadata"]["messages"][0]
    wrong_int = api_error(
        lambda: web.api_call("files.getUploadURLExternal", params={"filename": "a", "length": "x"})
    )
    assert wrong_int["error"] == "invalid_arguments"
    zero = api_error(lambda: web.files_getUploadURLExternal(filename="a", length=0))
    assert zero["error"] == "invalid_arguments"
    assert web.conversations_create(name="typed", is_private=True)["channel"]["is_private"] is True


def test_every_spec_method_refuses_a_call_without_its_required_arguments(
    slack: SlackEmulator,
) -> None:
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    with httpx.Client(base_url=slack.api_url, headers=headers) as client:
        for name, spec in all_specs().items():
            if set(spec.required) - {"token"}:
                body = client.post(name, data={}).json()
                assert body["ok"] is False, name
    assert slack.unmodelled_calls() == []


def test_unmodelled_method_validates_then_answers_ok(web: WebClient, slack: SlackEmulator) -> None:
    assert web.api_call("reactions.add", params={"channel": "C1", "name": "x", "timestamp": "1"})[
        "ok"
    ]
    assert [c.method for c in slack.unmodelled_calls()] == ["reactions.add"]
    assert api_error(lambda: web.api_call("reactions.add"))["ok"] is False


def test_json_body_without_charset_gets_slacks_warning(slack: SlackEmulator) -> None:
    headers = {"Authorization": f"Bearer {slack.bot_token}", "Content-Type": "application/json"}
    body = httpx.post(slack.api_url + "auth.test", content=b"{}", headers=headers).json()
    assert body["ok"] is True and body["warning"] == "missing_charset"
    assert body["response_metadata"]["warnings"] == ["missing_charset"]


# -- Block Kit limits -----------------------------------------------------------------------------

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([SECTION] * 51, "/blocks"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "/blocks/0/text/text",
        ),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        ([{**SECTION, "block_id": "b" * 256}], "/blocks/0/block_id"),
        ([{**SECTION, "colour": "red"}], "/blocks/0"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": f"a{i}",
                            "text": {"type": "plain_text", "text": "b"},
                        }
                        for i in range(26)
                    ],
                }
            ],
            "/blocks/0/elements",
        ),
    ],
)
def test_block_kit_limits_in_messages(
    web: WebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    channel = incident_channel(web)
    body = api_error(lambda: web.chat_postMessage(channel=channel, text="t", blocks=blocks))
    assert body["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in m for m in body["response_metadata"]["messages"])


def test_blocks_get_ids_filled_in_and_bad_json_is_a_format_error(web: WebClient) -> None:
    channel = incident_channel(web)
    button = {"type": "button", "text": {"type": "plain_text", "text": "Approve"}}
    posted = web.chat_postMessage(
        channel=channel, text="t", blocks=[{**SECTION, "accessory": button}]
    )
    block = posted["message"]["blocks"][0]
    assert block["block_id"] and block["accessory"]["action_id"]
    assert block["accessory"]["text"]["emoji"] is True
    bad = api_error(
        lambda: web.api_call("chat.postMessage", params={"channel": channel, "blocks": "[{"})
    )
    assert bad["error"] == "invalid_blocks_format"


MODAL = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Request access"},
    "submit": {"type": "plain_text", "text": "Request"},
    "callback_id": "request",
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_views_open_checks_the_view(web: WebClient, slack: SlackEmulator) -> None:
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "t" * 25}}
    trigger = slack.issue_trigger(ALICE)
    body = api_error(lambda: web.views_open(trigger_id=trigger, view=long_title))
    assert body["error"] == "invalid_arguments"
    assert body["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    body = api_error(lambda: web.views_open(trigger_id=trigger, view=no_submit))
    assert "missing required field: submit" in body["response_metadata"]["messages"][0]
    too_many = {**MODAL, "blocks": [SECTION] * 101}
    assert api_error(lambda: web.views_open(trigger_id=trigger, view=too_many))["error"] == (
        "invalid_arguments"
    )
    assert web.views_open(trigger_id=trigger, view=MODAL)["ok"]  # failures did not use it up


# -- trigger ids ----------------------------------------------------------------------------------


def test_trigger_ids_are_single_use_and_expire(web: WebClient, slack: SlackEmulator) -> None:
    trigger = slack.issue_trigger(ALICE)
    opened = web.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["state"] == {"values": {}}
    assert opened["callback_id"] == "request" and opened["root_view_id"] == opened["id"]
    assert api_error(lambda: web.views_open(trigger_id=trigger, view=MODAL))["error"] == (
        "exchanged_trigger_id"
    )
    stale = slack.issue_trigger(ALICE)
    slack.advance_clock(3.5)
    assert api_error(lambda: web.views_open(trigger_id=stale, view=MODAL))["error"] == (
        "expired_trigger_id"
    )
    assert api_error(lambda: web.views_open(trigger_id="12345.98765.abcd", view=MODAL))[
        "error"
    ] == ("invalid_trigger_id")
    assert [v.user_id for v in slack.views()] == [ALICE]


def test_views_update_hash_and_home_publish(web: WebClient, slack: SlackEmulator) -> None:
    view = web.views_open(trigger_id=slack.issue_trigger(ALICE), view=MODAL)["view"]
    updated = web.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    stale = api_error(lambda: web.views_update(view_id=view["id"], hash=view["hash"], view=MODAL))
    assert stale["error"] == "hash_conflict"
    assert api_error(lambda: web.views_update(view_id="V0NOPE", view=MODAL))["error"] == "not_found"
    home = {"type": "home", "blocks": [SECTION]}
    assert web.views_publish(user_id=ALICE, view=home)["view"]["type"] == "home"
    tab = slack.home_tab(ALICE)
    assert tab is not None and tab.body["blocks"][0]["text"]["text"] == "hello"


# -- channels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Incident", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc.42", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("", "invalid_name_required"),
        ("general", "name_taken"),
    ],
)
def test_channel_names(web: WebClient, name: str, error: str) -> None:
    assert api_error(lambda: web.conversations_create(name=name))["error"] == error


def test_create_name_taken_and_channel_shape(web: WebClient, slack: SlackEmulator) -> None:
    channel = web.conversations_create(name="inc-7")["channel"]
    assert {"id", "name", "is_channel", "is_private", "created", "creator", "is_member"} <= set(
        channel
    )
    assert channel["creator"] == slack.bot_user_id and channel["name"] == "inc-7"
    assert api_error(lambda: web.conversations_create(name="inc-7"))["error"] == "name_taken"
    found = slack.channel_by_name("inc-7")
    assert found is not None and found.id == channel["id"]


def test_invite_topic_archive(web: WebClient, slack: SlackEmulator) -> None:
    channel = incident_channel(web)
    assert api_error(lambda: web.conversations_invite(channel=channel, users=[ALICE]))["error"] == (
        "already_in_channel"
    )
    assert api_error(lambda: web.conversations_invite(channel=channel, users=["U0NOBODY"]))[
        "error"
    ] == ("user_not_found")
    assert api_error(lambda: web.conversations_invite(channel=channel, users=[slack.bot_user_id]))[
        "error"
    ] == ("cant_invite_self")
    assert api_error(lambda: web.conversations_invite(channel="C0MISSING", users=[BOB]))[
        "error"
    ] == ("channel_not_found")
    many = [f"U{i:09d}" for i in range(101)]
    assert api_error(lambda: web.conversations_invite(channel=channel, users=many))["error"] == (
        "too_many_users"
    )
    assert api_error(lambda: web.conversations_setTopic(channel=channel, topic="t" * 251))[
        "error"
    ] == ("too_long")
    web.conversations_setTopic(channel=channel, topic="SEV1: db down")
    info = web.conversations_info(channel=channel, include_num_members=True)["channel"]
    assert info["topic"]["value"] == "SEV1: db down" and info["num_members"] == 2
    assert web.conversations_members(channel=channel)["members"] == [slack.bot_user_id, ALICE]
    web.conversations_archive(channel=channel)
    assert slack.channel(channel).archived
    assert api_error(lambda: web.conversations_archive(channel=channel))["error"] == (
        "already_archived"
    )
    assert api_error(lambda: web.conversations_invite(channel=channel, users=[BOB]))["error"] == (
        "is_archived"
    )
    assert api_error(lambda: web.chat_postMessage(channel=channel, text="x"))["error"] == (
        "is_archived"
    )


def test_membership_rules(web: WebClient, slack: SlackEmulator) -> None:
    public = slack.add_channel("ops", members=[ALICE])
    secret = slack.add_channel("secret", members=[ALICE], is_private=True)
    assert api_error(lambda: web.chat_postMessage(channel=public, text="x"))["error"] == (
        "not_in_channel"
    )
    assert api_error(lambda: web.chat_postMessage(channel=secret, text="x"))["error"] == (
        "channel_not_found"
    )
    assert api_error(lambda: web.conversations_info(channel=secret))["error"] == "channel_not_found"
    web.conversations_join(channel=public)
    again = web.conversations_join(channel=public)
    assert again["warning"] == "already_in_channel"
    assert web.chat_postMessage(channel=public, text="x")["ok"]


# -- messages -------------------------------------------------------------------------------------


def test_post_update_thread_and_history(web: WebClient, slack: SlackEmulator) -> None:
    channel = incident_channel(web)
    first = web.chat_postMessage(channel=channel, text="request", blocks=[SECTION])
    second = web.chat_postMessage(channel=channel, text="reply", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    message = first["message"]
    assert message["user"] == slack.bot_user_id and message["bot_id"] == slack.bot_id
    assert message["type"] == "message" and message["team"] == slack.team_id
    assert second["message"]["thread_ts"] == first["ts"]
    updated = web.chat_update(channel=channel, ts=first["ts"], text="approved", blocks=[])
    assert updated["text"] == "approved" and updated["message"]["edited"]["user"]
    texts = [(m.text, m.thread_ts, m.blocks) for m in slack.messages(channel)]
    assert texts == [("approved", first["ts"], None), ("reply", first["ts"], None)]
    assert slack.thread(channel, first["ts"])[0].text == "reply"
    assert api_error(lambda: web.chat_update(channel=channel, ts="1.000001", text="x"))[
        "error"
    ] == ("message_not_found")
    theirs = slack.add_message(channel, ALICE, "mine")
    assert api_error(lambda: web.chat_update(channel=channel, ts=theirs, text="x"))["error"] == (
        "cant_update_message"
    )
    long_update = api_error(
        lambda: web.chat_update(channel=channel, ts=first["ts"], text="x" * 4001)
    )
    assert long_update["error"] == "msg_too_long"
    assert api_error(lambda: web.chat_postMessage(channel=channel, text="x" * 40_001))["error"] == (
        "msg_too_long"
    )


def test_ephemeral_dm_and_pins(web: WebClient, slack: SlackEmulator) -> None:
    channel = incident_channel(web)
    sent = web.chat_postEphemeral(channel=channel, user=ALICE, text="only you")
    assert isinstance(sent.data, dict) and set(sent.data) >= {"ok", "message_ts"}
    assert [e.text for e in slack.ephemerals(ALICE)] == ["only you"]
    assert slack.messages(channel) == []
    assert api_error(lambda: web.chat_postEphemeral(channel=channel, user=BOB, text="x"))[
        "error"
    ] == ("user_not_in_channel")
    dm = web.conversations_open(users=BOB)["channel"]["id"]
    assert dm.startswith("D")
    web.chat_postMessage(channel=dm, text="your credential")
    assert [m.text for m in slack.dms(BOB)] == ["your credential"]
    ts = web.chat_postMessage(channel=channel, text="pin me")["ts"]
    web.pins_add(channel=channel, timestamp=ts)
    assert slack.pins(channel) == [ts]
    assert (
        api_error(lambda: web.pins_add(channel=channel, timestamp=ts))["error"] == "already_pinned"
    )
    assert api_error(lambda: web.pins_add(channel=channel, timestamp="1.000002"))["error"] == (
        "message_not_found"
    )
    web.conversations_archive(channel=channel)
    assert api_error(lambda: web.pins_add(channel=channel, timestamp=ts))["error"] == "is_archived"


def test_users_and_groups(web: WebClient, slack: SlackEmulator) -> None:
    user = web.users_info(user=ALICE)["user"]
    assert user["profile"]["email"] == "alice@example.com" and user["is_bot"] is False
    assert api_error(lambda: web.users_info(user="U0NOBODY"))["error"] == "user_not_found"
    assert web.users_lookupByEmail(email="bob@example.com")["user"]["id"] == BOB
    assert api_error(lambda: web.users_lookupByEmail(email="x@y.z"))["error"] == "users_not_found"
    group = slack.add_usergroup("approvers", [ALICE, BOB])
    assert web.usergroups_users_list(usergroup=group)["users"] == [ALICE, BOB]
    assert api_error(lambda: web.usergroups_users_list(usergroup="S0NOPE"))["error"] == (
        "no_such_subteam"
    )


# -- files ----------------------------------------------------------------------------------------


def test_file_upload_end_to_end(web: WebClient, slack: SlackEmulator) -> None:
    channel = incident_channel(web)
    done = web.files_upload_v2(
        channel=channel,
        filename="audit.md",
        content="# audit\n",
        title="Audit",
        initial_comment="Audit summary",
    )
    assert done["file"]["title"] == "Audit"
    [message] = slack.messages(channel)
    assert message.text == "Audit summary" and message.files is not None
    assert message.files[0]["name"] == "audit.md"
    assert [f.content for f in slack.files()] == [b"# audit\n"]
    assert slack.methods_called()[-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    ticket = web.files_getUploadURLExternal(filename="x.txt", length=10)
    wrong = httpx.post(ticket["upload_url"], content=b"short")
    assert wrong.status_code == 400
    missing = api_error(lambda: web.files_completeUploadExternal(files=[{"id": ticket["file_id"]}]))
    assert missing["error"] == "file_not_found"
    assert api_error(lambda: web.files_completeUploadExternal(files=[{"id": "F0NOPE"}]))[
        "error"
    ] == ("file_not_found")


# -- rate limits and faults -----------------------------------------------------------------------


def test_429_is_retried_by_slack_sdks_handler(web: WebClient, slack: SlackEmulator) -> None:
    channel = incident_channel(web)
    slack.rate_limit_next("chat.postMessage", count=1, retry_after=1)
    patient = WebClient(base_url=slack.api_url, token=slack.bot_token)
    patient.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    started = time.monotonic()
    assert patient.chat_postMessage(channel=channel, text="eventually")["ok"]
    assert time.monotonic() - started >= 1.0
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200]


def test_429_without_handler_raises_with_retry_after(web: WebClient, slack: SlackEmulator) -> None:
    slack.rate_limit_next("conversations.create", retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        web.conversations_create(name="limited")
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.data == {"ok": False, "error": "ratelimited"}
    assert web.conversations_create(name="limited")["ok"]


def test_fail_next_and_enforced_post_rate(slack: SlackEmulator, web: WebClient) -> None:
    slack.fail_next("conversations.create", "restricted_action")
    assert api_error(lambda: web.conversations_create(name="a"))["error"] == "restricted_action"
    channel = incident_channel(web)
    slack.set_enforce_rate_limits(True)
    web.chat_postMessage(channel=channel, text="one")
    limited = api_error(lambda: web.chat_postMessage(channel=channel, text="two"))
    assert limited == {"ok": False, "error": "ratelimited"}
    other = web.conversations_create(name="elsewhere")["channel"]["id"]
    assert web.chat_postMessage(channel=other, text="fine")["ok"]  # the limit is per channel


def test_an_outage_fails_every_method_until_it_ends(slack: SlackEmulator, web: WebClient) -> None:
    channel = incident_channel(web)
    slack.start_outage(500)
    assert slack.in_outage
    calls: list[Callable[[], Any]] = [
        lambda: web.chat_postMessage(channel=channel, text="lost"),
        lambda: web.conversations_create(name="later"),
        lambda: web.auth_test(),
    ]
    for call in calls:
        with pytest.raises(SlackApiError) as caught:
            call()
        assert caught.value.response.status_code == 500
        assert caught.value.response.data == {"ok": False, "error": "internal_error"}
    with pytest.raises(ChatUnavailable):  # to the gateway, Slack is unavailable
        SlackChat(web).post(channel, text="lost")
    slack.end_outage()
    assert web.chat_postMessage(channel=channel, text="back")["ok"]
    assert [m.text for m in slack.messages(channel)] == ["back"]


def test_a_rate_limit_outage_ends_by_itself(slack: SlackEmulator, web: WebClient) -> None:
    channel = incident_channel(web)
    slack.start_outage(429, retry_after=3, seconds=0.5)
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel=channel, text="limited")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"
    time.sleep(0.6)
    assert not slack.in_outage
    assert web.chat_postMessage(channel=channel, text="back")["ok"]
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200]


# -- inbound: signing, Bolt, response_url ---------------------------------------------------------


class BoltServer:
    """A Bolt app under uvicorn on a free port, in a thread."""

    def __init__(self, app: App) -> None:
        handler = SlackRequestHandler(app)

        async def endpoint(request: Request) -> Response:
            return await handler.handle(request)

        starlette = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slack/events"
        config = uvicorn.Config(starlette, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> BoltServer:
        self.thread.start()
        deadline = time.monotonic() + 5
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def bolt(slack: SlackEmulator) -> Iterator[tuple[SlackClient, list[dict[str, Any]]]]:
    app = App(
        token=slack.bot_token,
        signing_secret=slack.signing_secret,
        token_verification_enabled=False,
        client=WebClient(base_url=slack.api_url, token=slack.bot_token),
    )
    seen: list[dict[str, Any]] = []

    @app.command("/incident")
    def incident(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        seen.append(body)
        client.views_open(trigger_id=body["trigger_id"], view=MODAL)
        respond(text=f"Opening an incident: {body['text']}")

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        seen.append(body)
        respond(text="Approved", replace_original=True)

    @app.view("request")
    def submitted(ack: Ack, body: dict[str, Any]) -> None:
        seen.append(body)
        ack()

    with BoltServer(app) as server:
        yield SlackClient(slack, server.url), seen


def test_signed_slash_command_reaches_bolt(
    slack: SlackEmulator, bolt: tuple[SlackClient, list[dict[str, Any]]]
) -> None:
    client, seen = bolt
    channel = slack.add_channel("ops", members=[ALICE], bot_member=True)
    result = client.slash_command("/incident", "db down", user_id=ALICE, channel_id=channel)
    assert result.status == 200 and result.acked_in_time
    body = seen[0]
    assert {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    } <= set(body)
    assert body["text"] == "db down" and body["channel_name"] == "ops"
    deadline = time.monotonic() + 3
    while not slack.responses(ALICE) and time.monotonic() < deadline:
        time.sleep(0.02)
    [post] = slack.responses(ALICE)
    assert post.body["text"] == "Opening an incident: db down" and post.status == 200
    assert [e.text for e in slack.ephemerals(ALICE)] == ["Opening an incident: db down"]
    assert [v.body["callback_id"] for v in slack.views(ALICE)] == ["request"]


def test_bad_signatures_are_refused(
    slack: SlackEmulator, bolt: tuple[SlackClient, list[dict[str, Any]]]
) -> None:
    client, seen = bolt
    channel = slack.add_channel("ops", members=[ALICE], bot_member=True)
    corrupt = client.slash_command(
        "/incident",
        "x",
        user_id=ALICE,
        channel_id=channel,
        options=SendOptions(corrupt_signature=True),
    )
    assert corrupt.status == 401
    old = int(time.time()) - 6 * 60
    stale = client.slash_command(
        "/incident", "x", user_id=ALICE, channel_id=channel, options=SendOptions(timestamp=old)
    )
    assert stale.status == 401
    other_secret = client.slash_command(
        "/incident",
        "x",
        user_id=ALICE,
        channel_id=channel,
        options=SendOptions(signing_secret="not-the-secret"),
    )
    assert other_secret.status == 401
    assert seen == []


def test_block_action_and_view_submission(
    web: WebClient, slack: SlackEmulator, bolt: tuple[SlackClient, list[dict[str, Any]]]
) -> None:
    client, seen = bolt
    channel = incident_channel(web)
    button = {
        "type": "button",
        "action_id": "approve",
        "value": "req-1",
        "text": {"type": "plain_text", "text": "Approve"},
        "style": "primary",
    }
    ts = web.chat_postMessage(
        channel=channel, text="approve?", blocks=[{"type": "actions", "elements": [button]}]
    )["ts"]
    result = client.block_action(ALICE, "approve", channel_id=channel, message_ts=ts)
    assert result.status == 200
    action = seen[0]["actions"][0]
    assert action["value"] == "req-1" and action["block_id"] and action["style"] == "primary"
    assert seen[0]["container"]["message_ts"] == ts
    deadline = time.monotonic() + 3
    while slack.messages(channel)[0].text != "Approved" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slack.messages(channel)[0].text == "Approved"  # replace_original
    view = web.views_open(trigger_id=slack.issue_trigger(ALICE), view=MODAL)["view"]
    values = {"reason": {"value": {"type": "plain_text_input", "value": "outage"}}}
    submitted = client.view_submission(ALICE, "request", values, view_id=view["id"])
    assert submitted.status == 200 and submitted.body == b""
    assert seen[1]["view"]["state"]["values"] == values
    assert slack.views(ALICE)[0].closed


def test_response_url_limits(slack: SlackEmulator) -> None:
    channel = slack.add_channel("ops", members=[ALICE], bot_member=True)
    url = slack.workspace.issue_response_url(slack.url, ALICE, channel)
    for i in range(5):
        assert httpx.post(url, json={"text": f"r{i}"}).status_code == 200
    assert httpx.post(url, json={"text": "sixth"}).json()["error"] == "used_url"
    later = slack.workspace.issue_response_url(slack.url, ALICE, channel)
    assert httpx.post(later, json={}).status_code == 400  # no text
    in_channel = httpx.post(later, json={"text": "for all", "response_type": "in_channel"})
    assert in_channel.status_code == 200 and slack.messages(channel)[-1].text == "for all"
    slack.advance_clock(31 * 60)
    assert httpx.post(later, json={"text": "late"}).json()["error"] == "expired_url"
    assert len(slack.responses(ALICE)) == 9


def test_events_are_signed_json_with_retry_headers(slack: SlackEmulator) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    sink = HTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=sink.handle_request)
    thread.start()
    client = SlackClient(slack, f"http://127.0.0.1:{sink.server_address[1]}/slack/events")
    result = client.event(
        {"type": "app_home_opened", "user": ALICE, "tab": "home"},
        options=SendOptions(retry_num=1, retry_reason="http_timeout"),
    )
    thread.join(timeout=5)
    sink.server_close()
    assert result.status == 200
    [(headers, body)] = received
    assert verify(
        slack.signing_secret,
        headers["x-slack-request-timestamp"],
        body,
        headers["x-slack-signature"],
    )
    assert headers["x-slack-retry-num"] == "1" and headers["x-slack-retry-reason"] == "http_timeout"
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback" and envelope["event"]["type"] == "app_home_opened"
    assert envelope["team_id"] == slack.team_id and envelope["event_id"].startswith("Ev")


def test_push_history_delete_and_request_formats(web: WebClient, slack: SlackEmulator) -> None:
    root = web.views_open(trigger_id=slack.issue_trigger(ALICE), view=MODAL)["view"]
    pushed = web.views_push(trigger_id=slack.issue_trigger(ALICE, root["id"]), view=MODAL)["view"]
    assert pushed["previous_view_id"] == root["id"] and pushed["root_view_id"] == root["id"]
    web.views_push(trigger_id=slack.issue_trigger(ALICE, pushed["id"]), view=MODAL)
    too_deep = api_error(lambda: web.views_push(trigger_id=slack.issue_trigger(ALICE), view=MODAL))
    assert too_deep["error"] == "push_limit_reached"
    channel = incident_channel(web)
    ts = web.chat_postMessage(channel=channel, text="first")["ts"]
    web.chat_postMessage(channel=channel, text="second")
    history = web.conversations_history(channel=channel, limit=1)
    assert [m["text"] for m in history["messages"]] == ["second"] and history["has_more"]
    web.chat_delete(channel=channel, ts=ts)
    assert [m.text for m in slack.messages(channel)] == ["second"]
    conflict = api_error(lambda: web.chat_postMessage(channel=channel, text="a", markdown_text="b"))
    assert conflict["error"] == "markdown_text_conflict"
    many = [{"text": "a", "fallback": "a"}] * 101
    assert api_error(lambda: web.chat_postMessage(channel=channel, attachments=many))["error"] == (
        "too_many_attachments"
    )
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    broken = httpx.post(
        slack.api_url + "chat.postMessage",
        content=b"{",
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert broken.json() == {"ok": False, "error": "invalid_json"}
    got = httpx.get(slack.api_url + "users.info", params={"user": BOB}, headers=headers)
    assert got.json()["user"]["name"] == "bob"
    options = [
        {"text": {"type": "plain_text", "text": f"o{i}"}, "value": f"{i}"} for i in range(101)
    ]
    select = {
        "type": "static_select",
        "action_id": "s",
        "options": options,
        "placeholder": {"type": "plain_text", "text": "Pick"},
    }
    body = api_error(
        lambda: web.chat_postMessage(
            channel=channel, text="t", blocks=[{"type": "actions", "elements": [select]}]
        )
    )
    assert body["error"] == "invalid_blocks"
    assert "no more than 100 items allowed" in body["response_metadata"]["messages"][0]


def test_missing_scope_when_scopes_are_declared() -> None:
    with running_slack(scopes=["chat:write", "channels:manage"]) as slack:
        web = WebClient(base_url=slack.api_url, token=slack.bot_token)
        assert web.conversations_create(name="scoped")["ok"]
        refused = api_error(lambda: web.users_info(user=slack.bot_user_id))
        assert refused["error"] == "missing_scope" and refused["needed"] == "users:read"


def test_the_gateway_invites_a_member_again_without_an_error(
    web: WebClient, slack: SlackEmulator
) -> None:
    """A hand-off invites the new commander; one already in the channel is no failure, though
    Slack answers `already_in_channel` (https://api.slack.com/methods/conversations.invite)."""
    channel = incident_channel(web)
    chat = SlackChat(web)
    chat.invite(channel, [ALICE])  # already there: Slack refuses, the gateway shrugs
    chat.invite(channel, [BOB])
    assert web.conversations_members(channel=channel)["members"] == [slack.bot_user_id, ALICE, BOB]
    with pytest.raises(ChatError, match="user_not_found"):
        chat.invite(channel, ["U0NOBODY"])


# -- message metadata: a post found again after a stop -------------------------------------


def test_a_marked_post_is_found_in_its_thread_and_metadata_only_when_asked(
    web: WebClient,
) -> None:
    """Slack returns message metadata from conversations.replies and .history only with
    `include_all_metadata` (https://api.slack.com/methods/conversations.replies#arg_include_all_metadata,
    https://docs.slack.dev/messaging/message-metadata)."""
    chat = SlackChat(web)
    channel = incident_channel(web)
    card = chat.post(channel, text="card", marker="7:card")
    reply = chat.post(channel, text="denied", thread_ts=card, marker="9:outcome")
    assert chat.find_marked(channel, "9:outcome", thread_ts=card) == reply
    assert chat.find_marked(channel, "9:reminder", thread_ts=card) is None
    assert chat.find_marked(channel, "7:card") == card
    plain = web.conversations_replies(channel=channel, ts=card)["messages"]
    assert all("metadata" not in message for message in plain)
    asked = web.conversations_replies(channel=channel, ts=card, include_all_metadata=True)
    assert asked["messages"][1]["metadata"]["event_payload"] == {"marker": "9:outcome"}


def test_a_marked_post_is_found_past_the_first_page_of_a_long_thread(web: WebClient) -> None:
    chat = SlackChat(web)
    channel = incident_channel(web)
    card = chat.post(channel, text="card")
    for n in range(250):
        chat.post(channel, text=f"reply {n}", thread_ts=card)
    late = chat.post(channel, text="denied", thread_ts=card, marker="300:outcome")
    assert chat.find_marked(channel, "300:outcome", thread_ts=card) == late
