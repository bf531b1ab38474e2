"""Ack latency in HTTP mode: the real bot against a bare Bolt app that only acks.

    .venv/bin/python -m tests.bench.ack_bench [--requests 2000] [--senders 50]

Three kinds of process, as in production: the emulators (Slack, Vault) here, the server under
test in its own process (`gatehouse run` in HTTP mode, or a bare Bolt app served the same way:
Starlette + uvicorn, process_before_response=True), and the load in another process: signed
`/request-access` commands from concurrent senders. The bot files every request for real in an
incident channel (SQLite, Slack and Vault emulated), so its worker pool is busy while its acks
are measured. Prints figures only.
"""

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.slack.signing import signed_headers
from tests.emulators.vault import running_vault
from tests.harness import EXAMPLE_POLICY
from tests.tools.vault_setup import run_setup_script

NOWHERE = "postgresql://{{username}}:{{password}}@db.invalid:5432/ml"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_bare(port: int, secret: str, api_url: str, token: str) -> None:
    """The baseline: a Bolt app whose only listener acks, served like Gatehouse's HTTP mode."""
    import uvicorn
    from slack_bolt import Ack, App
    from slack_sdk import WebClient

    from bot.slack.edge import SlackEdge
    from bot.slack.http import create_http_app
    from tests.unit.fakes import MemorySeenRequests

    app = App(
        client=WebClient(token=token, base_url=api_url),
        signing_secret=secret,
        process_before_response=True,
    )

    def only_ack(ack: Ack) -> None:
        ack()

    app.command("/request-access")(only_ack)
    web = create_http_app(app, dict, edge=SlackEdge(secret, MemorySeenRequests()))
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning")


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def load(url: str, secret: str, bodies: list[bytes], senders: int) -> tuple[list[float], float]:
    """Send every body, signed, from `senders` threads; latencies (s) and elapsed (s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(bodies)

    def sender() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    body = next(cursor, None)
                if body is None:
                    return
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    **signed_headers(secret, body),
                }
                started = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                took = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(f"{response.status_code}: {response.text}")
                with lock:
                    latencies.append(took)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


def load_elsewhere(
    url: str, secret: str, bodies: list[bytes], senders: int
) -> tuple[list[float], float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(load, (url, secret, bodies, senders))


def commands(slack: SlackEmulator, channel: str, count: int) -> list[bytes]:
    return [
        urlencode(
            {
                "command": "/request-access",
                "text": f"inference-logs-ro 30m bench run {n}",
                "user_id": "U0ONCALL2",
                "channel_id": channel,
                "team_id": slack.team_id,
                "response_url": slack.workspace.issue_response_url(slack.url, "U0ONCALL2", channel),
                "trigger_id": slack.workspace.issue_trigger("U0ONCALL2"),
            }
        ).encode()
        for n in range(count)
    ]


def report(name: str, latencies: list[float], elapsed: float) -> float:
    cuts = statistics.quantiles(latencies, n=100)
    p50, p95, p99 = cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000
    print(
        f"{name:<10} {len(latencies):5d} acks  {len(latencies) / elapsed:7.0f} req/s   "
        f"p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms",
        flush=True,
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        running_slack() as slack,
        running_vault(database_detached=True) as vault,
    ):
        setup = run_setup_script(vault, NOWHERE, Path(folder))
        slack.add_user("U0ONCALL1", "ada")
        slack.add_user("U0ONCALL2", "grace")
        room = slack.add_channel("bench", members=["U0ONCALL1", "U0ONCALL2"])

        port = free_port()
        bare = multiprocessing.get_context("spawn").Process(
            target=serve_bare,
            args=(port, slack.signing_secret, slack.api_url, slack.bot_token),
            daemon=True,
        )
        bare.start()
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        bare_p99 = report(
            "bare Bolt",
            *load_elsewhere(
                f"http://127.0.0.1:{port}/slack/events",
                slack.signing_secret,
                commands(slack, room, args.requests),
                args.senders,
            ),
        )
        bare.terminate()

        port = free_port()
        environment = {
            **os.environ,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "GATEHOUSE_SLACK_API_URL": slack.api_url,
            "VAULT_ADDR": vault.url,
            "GATEHOUSE_VAULT_AUTH": "approle",
            "GATEHOUSE_VAULT_ROLE_ID": setup.role_id,
            "GATEHOUSE_VAULT_SECRET_ID": setup.secret_id,
            "DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}",
            "GATEHOUSE_POLICY": str(EXAMPLE_POLICY),
            "GATEHOUSE_MODE": "http",
            "GATEHOUSE_LOG_LEVEL": "WARNING",
            "GATEHOUSE_HOST": "127.0.0.1",
            "GATEHOUSE_PORT": str(port),
        }
        subprocess.run(
            [BIN / "gatehouse", "db", "upgrade"],
            env=environment,
            check=True,
            capture_output=True,
            cwd=folder,
        )
        bot = subprocess.Popen([BIN / "gatehouse", "run"], env=environment, cwd=folder)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz")
            events = f"http://127.0.0.1:{port}/slack/events"
            SlackClient(slack, events).slash_command(
                "/incident", "open bench", user_id="U0ONCALL1", channel_id=room
            )
            deadline = time.monotonic() + 15
            while not [c for c in slack.workspace.channels.values() if c.pins]:
                if time.monotonic() > deadline:
                    raise SystemExit("the incident channel was not created")
                time.sleep(0.05)
            channel = next(c for c in slack.workspace.channels.values() if c.pins)
            channel.members.append("U0ONCALL2")
            gate_p99 = report(
                "Gatehouse",
                *load_elsewhere(
                    events,
                    slack.signing_secret,
                    commands(slack, channel.id, args.requests),
                    args.senders,
                ),
            )

            def filed() -> int:
                return sum("bench run" in json.dumps(m.blocks) for m in slack.messages(channel.id))

            deadline = time.monotonic() + 120
            while filed() < args.requests and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"approval cards posted after the acks: {filed()} of {args.requests}")
        finally:
            bot.terminate()
            bot.wait(timeout=10)
        print(f"p99 ratio Gatehouse / bare Bolt: {gate_p99 / bare_p99:.2f}")


if __name__ == "__main__":
    main()
