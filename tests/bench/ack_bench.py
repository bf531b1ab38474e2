"""Slash-command acks in HTTP mode: Gatehouse against a bare Bolt app served the same way.

    .venv/bin/python -m tests.bench.ack_bench [--rate 200] [--seconds 10]
        [--connections 50] [--saturation-seconds 5]

Three kinds of process, as in production: the emulators (Slack, Vault) here, the server under
test in its own process (`gatehouse run` in HTTP mode, or a bare Bolt app whose only listener
acks, served the same way: Starlette + uvicorn, the same edge, process_before_response=True),
and the load in another. Every request is a signed `/request-access` with a signature of its
own (the edge refuses a signature seen before), so Gatehouse files each one for real in an
incident channel (SQLite; Slack and Vault emulated) and its cards, tasks and DMs are being sent
while its acks are measured.

Two loads, each run against both servers:
- a constant rate (`--rate` per second for `--seconds`), open loop: each request has its time
  to be sent, and its latency counts from then, so a server that falls behind is not hidden;
  sent by a Python load generator in its own process (it measures itself too: the bare app's
  figures are the floor that includes it);
- saturation: `--connections` connections sending as fast as answers come, for
  `--saturation-seconds`; Debian's `wrk` sends them when it is installed (pre-signed requests,
  tests/bench/presigned.lua), else the Python generator.

Prints p50 and p99 of each, the throughput at saturation, each Gatehouse figure beside the bare
app's and the ratio, and the server's resident memory idle and at its peak under the constant
load. Prints figures only.
"""

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.slack.signing import signed_headers
from tests.emulators.vault import running_vault
from tests.fleet import PEOPLE
from tests.harness import EXAMPLE_POLICY
from tests.tools.vault_setup import run_setup_script

NOWHERE = "postgresql://{{username}}:{{password}}@db.invalid:5432/ml"
BIN = Path(sys.executable).parent
WRK_SCRIPT = Path(__file__).with_name("presigned.lua")
P99_GOAL = 3.0  # Gatehouse's p99 at a constant rate, at most this many times the floor's
THROUGHPUT_GOAL = 0.5  # Gatehouse's throughput at saturation, at least this share of the floor's
IDLE_RSS_AIM_MB, LOADED_RSS_AIM_MB = 150, 250


@dataclass(frozen=True)
class Figures:
    latencies: list[float]  # seconds
    elapsed: float
    failures: int
    tool: str

    def percentile(self, share: float) -> float:
        cuts = statistics.quantiles(self.latencies, n=100)
        return cuts[round(share * 100) - 1] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed


@dataclass
class Served:
    name: str
    constant: Figures | None = None
    saturation: Figures | None = None
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_bare(port: int, secret: str, api_url: str, token: str) -> None:
    """The floor: a Bolt app whose only listener acks, served like Gatehouse's HTTP mode."""
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def peak_rss(pid: int) -> Iterator[Callable[[], float]]:
    """Samples the process's resident memory every 50 ms; yields a reader of the peak."""
    peak = [rss_mb(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        sampler.join()


# -- load ----------------------------------------------------------------------------------------


def _post(client: httpx.Client, url: str, secret: str, body: bytes) -> bool:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(secret, body)}
    return client.post(url, content=body, headers=headers).status_code == 200


def open_loop(url: str, secret: str, bodies: list[bytes], rate: float) -> Figures:
    """Send body i at start + i/rate, each from a pool of senders; latency from that time."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    cursor = iter(enumerate(bodies))
    start = time.perf_counter() + 0.2

    def sender() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                number, body = item
                due = start + number / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                ok = _post(client, url, secret, body)
                took = time.perf_counter() - due
                with lock:
                    latencies.append(took)
                    failures[0] += not ok

    threads = [threading.Thread(target=sender) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(latencies, time.perf_counter() - start, failures[0], "python, open loop")


def closed_loop(url: str, secret: str, bodies: list[bytes], connections: int) -> Figures:
    """Every connection sends its next body as soon as the last is answered."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    cursor = iter(bodies)

    def sender() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    body = next(cursor, None)
                if body is None:
                    return
                started = time.perf_counter()
                ok = _post(client, url, secret, body)
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    failures[0] += not ok

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(latencies, time.perf_counter() - started, failures[0], "python, closed loop")


def elsewhere(load: Callable[..., Figures], *args: object) -> Figures:
    """Run a Python load in a process of its own, so it does not share the emulators' GIL."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(load, args)


_WRK_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def with_wrk(url: str, secret: str, bodies: list[bytes], connections: int, seconds: int) -> Figures:
    """Saturation by wrk, each request pre-signed (tests/bench/presigned.lua cycles through
    them; there are more than it can send in `seconds`). Its latency percentiles stand in for
    the latencies: p50 and p99 are what is read from them."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as listing:
        for body in bodies:
            headers = signed_headers(secret, body)
            listing.write(
                f"{headers['X-Slack-Request-Timestamp']}\t{headers['X-Slack-Signature']}"
                f"\t{body.decode()}\n"
            )
    threads = 2
    try:
        output = subprocess.run(
            [
                *("wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"),
                *("-s", str(WRK_SCRIPT), url, "--", listing.name, str(threads)),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(listing.name)
    percentiles = {
        int(share): float(value) * _SECONDS[unit]
        for share, value, unit in _WRK_PERCENTILE.findall(output)
    }
    total = _WRK_TOTAL.search(output)
    if total is None or 50 not in percentiles or 99 not in percentiles:
        raise SystemExit(f"wrk's output not understood:\n{output}")
    count, elapsed = int(total.group(1)), float(total.group(2)) * _SECONDS[total.group(3)]
    bad = _WRK_BAD.search(output)
    # 100 values that reproduce wrk's p50 and p99 for Figures.percentile; the count is wrk's.
    shape = [percentiles[50]] * 98 + [percentiles[99]] * 2
    return Figures(shape * (count // 100) or shape, elapsed, int(bad.group(1)) if bad else 0, "wrk")


# -- the run -------------------------------------------------------------------------------------


def commands(slack: SlackEmulator, channel: str, count: int, tag: str) -> list[bytes]:
    return [
        urlencode(
            {
                "command": "/request-access",
                "text": f"inference-logs-ro 30m bench {tag} {n}",
                "user_id": "U0ONCALL2",
                "channel_id": channel,
                "team_id": slack.team_id,
                "response_url": slack.workspace.issue_response_url(slack.url, "U0ONCALL2", channel),
                "trigger_id": slack.workspace.issue_trigger("U0ONCALL2"),
            }
        ).encode()
        for n in range(count)
    ]


def measure(
    served: Served,
    pid: int,
    url: str,
    secret: str,
    make: Callable[[int, str], list[bytes]],
    args: argparse.Namespace,
) -> None:
    time.sleep(1.0)
    served.idle_rss_mb = rss_mb(pid)
    with peak_rss(pid) as peak:
        served.constant = elsewhere(
            open_loop, url, secret, make(int(args.rate * args.seconds), "rate"), args.rate
        )
        served.peak_rss_mb = peak()
    time.sleep(2.0)  # what the constant load set off settles
    # Enough pre-signed requests for 5,000 a second.
    many = make(5000 * args.saturation_seconds, "saturation")
    if shutil.which("wrk"):
        served.saturation = with_wrk(url, secret, many, args.connections, args.saturation_seconds)
    else:
        served.saturation = elsewhere(closed_loop, url, secret, many, args.connections)


def report(bare: Served, gate: Served, args: argparse.Namespace) -> None:
    assert bare.constant and gate.constant and bare.saturation and gate.saturation
    print(f"{'':44s} {'bare Bolt':>12s} {'Gatehouse':>12s} {'ratio':>7s}  goal")
    rows: list[tuple[str, Figures, Figures, float, str]] = [
        (f"constant {args.rate:g} req/s: p50 (ms)", bare.constant, gate.constant, 0.5, ""),
        (
            f"constant {args.rate:g} req/s: p99 (ms)",
            bare.constant,
            gate.constant,
            0.99,
            f"<= {P99_GOAL:g}x",
        ),
        (f"saturation, {args.connections} conns: p50", bare.saturation, gate.saturation, 0.5, ""),
        (f"saturation, {args.connections} conns: p99", bare.saturation, gate.saturation, 0.99, ""),
    ]
    for name, floor, ours, share, aim in rows:
        a, b = floor.percentile(share), ours.percentile(share)
        print(f"{name:44s} {a:12.1f} {b:12.1f} {b / a:6.2f}x  {aim}")
    a, b = bare.saturation.throughput, gate.saturation.throughput
    print(
        f"{'saturation: throughput (req/s)':44s} {a:12.0f} {b:12.0f} {b / a:6.2f}x"
        f"  >= {THROUGHPUT_GOAL:g}x"
    )
    print(
        f"{'resident memory idle (MB)':44s} {bare.idle_rss_mb:12.0f} {gate.idle_rss_mb:12.0f}"
        f" {'':7s}  Gatehouse < {IDLE_RSS_AIM_MB}"
    )
    print(
        f"{'resident memory, peak at the constant rate':44s} {bare.peak_rss_mb:12.0f}"
        f" {gate.peak_rss_mb:12.0f} {'':7s}  Gatehouse < {LOADED_RSS_AIM_MB}"
    )
    for served in (bare, gate):
        for figures in (served.constant, served.saturation):
            if figures and figures.failures:
                print(f"{served.name}: {figures.failures} answers were not 200 ({figures.tool})")
    print(f"load: {gate.constant.tool}; saturation: {gate.saturation.tool}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--saturation-seconds", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        running_slack() as slack,
        running_vault(database_detached=True) as vault,
    ):
        setup = run_setup_script(vault, NOWHERE, Path(folder))
        for user_id, name in PEOPLE.items():  # the requester and the approvers their tasks go to
            slack.add_user(user_id, name)
        room = slack.add_channel("bench", members=["U0ONCALL1", "U0ONCALL2"])

        bare = Served("bare Bolt")
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=serve_bare,
            args=(port, slack.signing_secret, slack.api_url, slack.bot_token),
            daemon=True,
        )
        server.start()
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz")
            assert server.pid is not None
            measure(
                bare,
                server.pid,
                f"http://127.0.0.1:{port}/slack/events",
                slack.signing_secret,
                lambda count, tag: commands(slack, room, count, tag),
                args,
            )
        finally:
            server.terminate()

        gate = Served("Gatehouse")
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
            measure(
                gate,
                bot.pid,
                events,
                slack.signing_secret,
                lambda count, tag: commands(slack, channel.id, count, tag),
                args,
            )
            cards = sum("bench rate" in json.dumps(m.blocks) for m in slack.messages(channel.id))
            print(f"cards posted for the constant load's requests: {cards}")
        finally:
            bot.terminate()  # it may still be working through the saturation's backlog
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
    report(bare, gate, args)


if __name__ == "__main__":
    main()
