"""The HTTP edge over real HTTP against the real bot: a 25 MB unsigned POST costs a 413, a log
line and no memory; a replayed signed command opens one incident, across two replicas too; an
Events API retry is handled once; a sealed Vault is reported, not a reason to leave the Service.

Slack's signing and five-minute window: https://api.slack.com/authentication/verifying-requests-from-slack
Slack's Events API retries (X-Slack-Retry-Num, same event_id, a new signature):
https://api.slack.com/apis/connections/events-api#retries
"""

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy import select as select_rows

from bot import bootstrap
from bot.config import Settings
from bot.store import migrate
from bot.store.tables import incidents
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SendOptions, SlackClient
from tests.emulators.slack.signing import signature as slack_signature
from tests.emulators.vault import VaultEmulator, running_vault
from tests.harness import EXAMPLE_POLICY, RunningBot, bot_settings, running_gatehouse
from tests.unit.example_policy import example_policy
from tests.waiting import eventually

ROOT_TOKEN = "hvs.gatehouse-edge-root-token"
BIG = 25 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with running_slack() as emulator:
        emulator.add_user("U0ONCALL1", "ada", email="ada@example.com")
        emulator.add_channel("war-room", members=["U0ONCALL1"])
        yield emulator


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with running_vault(root_token=ROOT_TOKEN) as emulator:
        yield emulator


def settings_for(slack: SlackEmulator, vault: VaultEmulator, database_url: str) -> Settings:
    return bot_settings(
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_api_url=slack.api_url,
        vault_addr=vault.url,
        vault_token=ROOT_TOKEN,
        database_url=database_url,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def post_big_body(port: int, *, chunked: bool) -> int:
    """POST 25 MB of junk, streamed in 64 KiB pieces until the bot answers (or stops reading):
    the client never holds more than one piece. Returns the status.

    With Content-Length the size alone refuses it. Chunked, it carries signature headers of the
    right shape (a fresh timestamp, a made-up signature), so the bot must read and count the
    body before it can tell the signature is wrong: the cap stops it first."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        framing = (
            f"Transfer-Encoding: chunked\r\nX-Slack-Request-Timestamp: {int(time.time())}\r\n"
            f"X-Slack-Signature: v0={'0' * 64}"
            if chunked
            else f"Content-Length: {BIG}"
        )
        head = (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        connection.sendall(head.encode())
        piece = b"z" * CHUNK
        framed = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        sent = 0
        while sent < BIG:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable:
                break
            try:
                connection.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        answer = b""
        while b"\r\n" not in answer:
            received = connection.recv(4096)
            if not received:
                break
            answer += received
    return int(answer.split(b" ", 2)[1])


def test_a_25_mb_unsigned_post_gets_413_and_costs_no_memory_and_one_short_line(
    slack: SlackEmulator, vault: VaultEmulator, tmp_path: Path
) -> None:
    """The real process (`gatehouse run`): four such POSTs, two with Content-Length and two
    chunked, at once; the log grows by under 1 KB and the resident memory by under 10 MB."""
    database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    migrate.upgrade(database)
    port = free_port()
    environment = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "GATEHOUSE_SLACK_API_URL": slack.api_url,
        "VAULT_ADDR": vault.url,
        "VAULT_TOKEN": ROOT_TOKEN,
        "DATABASE_URL": database,
        "GATEHOUSE_POLICY": str(EXAMPLE_POLICY),
        "GATEHOUSE_MODE": "http",
        "GATEHOUSE_HOST": "127.0.0.1",
        "GATEHOUSE_PORT": str(port),
        "GATEHOUSE_LOG_LEVEL": "DEBUG",
    }
    log_file = tmp_path / "bot.log"
    with log_file.open("w") as log, ExitStack() as stack:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], env=environment, stderr=log, cwd=tmp_path
        )
        stack.callback(bot.wait, 30)
        stack.callback(bot.terminate)

        def serving() -> bool:
            assert bot.poll() is None, log_file.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(serving, timeout=30)
        post_big_body(port, chunked=False)  # the first request's one-off allocations
        time.sleep(0.5)
        rss_before = resident_kib(bot.pid)
        log_before = log_file.stat().st_size

        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(
                    lambda chunked: post_big_body(port, chunked=chunked), [False, True, False, True]
                )
            )

        time.sleep(0.5)
        rss_growth = resident_kib(bot.pid) - rss_before
        log_growth = log_file.stat().st_size - log_before
        added = log_file.read_text()[log_before:]
    assert statuses == [413] * 4
    assert rss_growth < 10 * 1024, f"RSS grew by {rss_growth} KiB"
    assert log_growth < 1024, added
    assert "zzzz" not in added


def incident_count(bot: RunningBot) -> int:
    with bot.gatehouse.engine.connect() as connection:
        return int(
            connection.execute(select_rows(func.count()).select_from(incidents)).scalar_one()
        )


def replayed_three_times(people: list[SlackClient], channel_id: str) -> list[int]:
    """One signed `/incident open`, then the very same bytes and headers again twice within
    five minutes, the k-th send going to people[k % len(people)] (one replica or two)."""
    stamp = int(time.time())
    first = people[0].slash_command(
        "/incident",
        "open Replayed outage",
        user_id="U0ONCALL1",
        channel_id=channel_id,
        options=SendOptions(timestamp=stamp),
    )
    statuses = [first.status]
    for k in (1, 2):
        again = people[k % len(people)].send(
            first.sent, "application/x-www-form-urlencoded", SendOptions(timestamp=stamp)
        )
        statuses.append(again.status)
    return statuses


def war_room(slack: SlackEmulator) -> str:
    channel = slack.channel_by_name("war-room")
    assert channel is not None
    return channel.id


def test_a_signed_incident_open_sent_three_times_opens_one_incident(
    slack: SlackEmulator, vault: VaultEmulator, database_url: str
) -> None:
    with running_gatehouse(settings_for(slack, vault, database_url)) as bot:
        statuses = replayed_three_times([SlackClient(slack, bot.events_url)], war_room(slack))
        assert statuses == [200, 401, 401]
        eventually(lambda: incident_count(bot) == 1)
        time.sleep(0.5)  # anything a replay started would have opened its incident by now
        assert incident_count(bot) == 1


def home_opened(slack: SlackEmulator, event_id: str) -> bytes:
    envelope = {
        "token": slack.verification_token,
        "team_id": slack.team_id,
        "api_app_id": slack.app_id,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": "U0ONCALL1",
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
    }
    return json.dumps(envelope).encode()


def publishes_for(slack: SlackEmulator, user: str) -> int:
    return sum(1 for call in slack.calls_to("views.publish") if call.args.get("user_id") == user)


@pytest.mark.postgres
def test_two_replicas_agree_on_replays_and_on_event_retries(
    slack: SlackEmulator, vault: VaultEmulator, postgres_url: str
) -> None:
    settings = settings_for(slack, vault, postgres_url)
    with running_gatehouse(settings) as one, running_gatehouse(settings) as two:
        people = [SlackClient(slack, one.events_url), SlackClient(slack, two.events_url)]
        assert replayed_three_times(people, war_room(slack)) == [200, 401, 401]
        eventually(lambda: incident_count(one) == 1)

        before = publishes_for(slack, "U0ONCALL1")
        body = home_opened(slack, "Ev0EDGE" + str(int(time.time())))
        first = people[0].send(body, "application/json")
        retry = people[1].send(body, "application/json", SendOptions(retry_num=1))
        assert (first.status, retry.status) == (200, 200)
        eventually(lambda: publishes_for(slack, "U0ONCALL1") == before + 1)
        time.sleep(0.5)
        assert publishes_for(slack, "U0ONCALL1") == before + 1
        assert incident_count(two) == 1


def test_a_sealed_vault_keeps_the_bot_ready_and_is_reported(
    slack: SlackEmulator, vault: VaultEmulator, database_url: str
) -> None:
    """hvac answers a sealed Vault's sys/health (503) without raising; it is read as sealed."""
    with running_gatehouse(settings_for(slack, vault, database_url)) as bot:
        vault.fail_next(1000, 503, path_prefix="sys/health")
        ready = httpx.get(f"{bot.url}/readyz", timeout=5)
        health = httpx.get(f"{bot.url}/healthz", timeout=5)
        metrics = httpx.get(f"{bot.url}/metrics", timeout=5).text
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "problems": {}})
    assert (health.status_code, health.json()) == (200, {"alive": True, "vault": "sealed"})
    assert 'gatehouse_vault_state{state="sealed"} 1.0' in metrics
    assert 'gatehouse_vault_state{state="active"} 0.0' in metrics


@pytest.mark.parametrize(
    ("status", "state"),
    [(None, "active"), (503, "sealed"), (501, "uninitialized"), (429, "standby"), (500, "error")],
)
def test_vault_health_reads_the_state_from_sys_health(
    slack: SlackEmulator, vault: VaultEmulator, status: int | None, state: str
) -> None:
    """Vault's sys/health codes: https://developer.hashicorp.com/vault/api-docs/system/health"""
    broker = bootstrap.build_broker(
        settings_for(slack, vault, "sqlite://"), example_policy(), cast(Any, None)
    )
    if status is not None:
        vault.fail_next(1, status, path_prefix="sys/health")
    assert broker.health() == state


def test_vault_health_names_an_unreachable_vault(slack: SlackEmulator, tmp_path: Path) -> None:
    settings = bot_settings(
        slack_bot_token=slack.bot_token,
        vault_addr=f"http://127.0.0.1:{free_port()}",
        vault_token=ROOT_TOKEN,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
    )
    broker = bootstrap.build_broker(settings, example_policy(), cast(Any, None))
    assert broker.health() == "unreachable"


JUNK = [
    (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    (b"payload=null", "application/x-www-form-urlencoded"),
    (b"command=/incident&text=\xff\xfe", "application/x-www-form-urlencoded"),
    (b"command=%2Fincident&text=open+x", "application/json"),  # a form body sent as JSON
]
BAD_TIMESTAMPS = ["abc", "", "1e9", "9" * 5000]


def test_junk_gets_401_unsigned_and_400_signed_never_500_from_the_real_bot(
    slack: SlackEmulator, vault: VaultEmulator, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    with running_gatehouse(settings_for(slack, vault, database)) as bot:
        unsigned = [
            httpx.post(bot.events_url, content=body, headers={"Content-Type": kind}).status_code
            for body, kind in JUNK
        ]
        signed = []
        for body, kind in JUNK:
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": kind,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": slack_signature(slack.signing_secret, stamp, body),
            }
            signed.append(httpx.post(bot.events_url, content=body, headers=headers).status_code)
        stamped = [
            httpx.post(
                bot.events_url,
                content=JUNK[0][0],
                headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64},
            ).status_code
            for stamp in BAD_TIMESTAMPS
        ]
    assert unsigned == [401] * len(JUNK)
    assert signed == [400] * len(JUNK)
    assert stamped == [401] * len(BAD_TIMESTAMPS)
