"""Time to access: an Approve click until the requester holds the wrapping token, Vault far away.

    .venv/bin/python -m tests.bench.access_bench [--clicks 40] [--vault-rtt-ms 20]
        [--database sqlite|postgres]

`gatehouse run` in its own process, in HTTP mode, against the Slack and Vault emulators in this
one (tests/fleet.py), with every Vault request answered `--vault-rtt-ms` late, as a Vault that
far away would. Each click approves a 1-of-1 request for `inference-logs-ro` (a database
credential: a grant token, then the credential read wrapped under it) with a signed
interaction; the time to access is from sending the click to the moment the Slack emulator
answered the private message that carries the wrapping token (the ephemeral, then the DM). The
bot is left quiet between clicks, so each click is measured alone.

Prints p50 and p99 of each, the Vault requests each access made (by path), and the floor: the
requests an access needs (2) times the round trip. Prints figures only.
"""

import argparse
import statistics
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.databases import bench_database
from tests.fleet import Fleet, Replica, running_fleet
from tests.waiting import eventually

REQUESTER, APPROVER = "U0ONCALL2", "U0LEAD1"
NECESSARY_VAULT_REQUESTS = 2  # the grant's token, and the credential read wrapped under it
QUIET_SECONDS = 0.3
GOAL_P50_MS, GOAL_P99_MS = 10, 30  # above the floor


@dataclass(frozen=True)
class Access:
    to_ephemeral: float  # seconds from the click to the credential's ephemeral
    to_dm: float  # … and to its DM
    ack: float  # the click's HTTP answer
    vault_requests: Counter[str]  # by path, from the click to the delivery


def _wait_quiet(fleet: Fleet) -> None:
    """Until neither emulator has been called for QUIET_SECONDS."""
    seen, since = (len(fleet.slack.calls), len(fleet.vault.calls)), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS:
        time.sleep(0.02)
        now = (len(fleet.slack.calls), len(fleet.vault.calls))
        if now != seen:
            seen, since = now, time.monotonic()


def _credential_answered_at(fleet: Fleet, method: str, request_id: str, after: int) -> float:
    def answered() -> float | None:
        for call in fleet.slack.calls[after:]:
            blocks = str(call.args.get("blocks"))
            carries = request_id in blocks and "vault unwrap" in blocks
            if call.method == method and call.ok and carries:
                return call.at
        return None

    return eventually(answered, f"the credential of {request_id} by {method}")


def _one_access(fleet: Fleet, replica: Replica, channel: str, number: int) -> Access:
    marker = f"access-bench-{number}"
    since = fleet.posted_so_far(channel)
    filed = replica.people.slash_command(
        "/request-access", f"inference-logs-ro 30m {marker}", user_id=REQUESTER, channel_id=channel
    )
    assert filed.status == 200, filed.text
    card = fleet.card(channel, marker, since=since)
    request_id = fleet.request_id(card)
    _wait_quiet(fleet)
    slack_from, vault_from = len(fleet.slack.calls), len(fleet.vault.calls)
    clicked_at = time.monotonic()
    clicked = replica.people.block_action(
        APPROVER, "gatehouse.approve", request_id, channel_id=channel, message_ts=card.ts
    )
    assert clicked.status == 200, clicked.text
    ephemeral = _credential_answered_at(fleet, "chat.postEphemeral", request_id, slack_from)
    dm = _credential_answered_at(fleet, "chat.postMessage", request_id, slack_from)
    vault_calls = list(fleet.vault.calls[vault_from:])
    _wait_quiet(fleet)
    return Access(
        to_ephemeral=ephemeral - clicked_at,
        to_dm=dm - clicked_at,
        ack=clicked.elapsed,
        vault_requests=Counter(c.path for c in vault_calls),
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(database_url: str, folder: Path, clicks: int, rtt_ms: float) -> list[Access]:
    with running_fleet(database_url, folder) as fleet:
        (replica,) = fleet.start(1)
        channel = fleet.open_incident(replica, "access bench").id
        fleet.vault.set_delay(rtt_ms / 1000)
        # The first access also pays for what happens once: the incident's own token.
        _one_access(fleet, replica, channel, 0)
        return [_one_access(fleet, replica, channel, n) for n in range(1, clicks + 1)]


def report(accesses: list[Access], rtt_ms: float, database: str) -> None:
    floor = NECESSARY_VAULT_REQUESTS * rtt_ms
    print(f"time to access, {database}, Vault {rtt_ms:g} ms away, {len(accesses)} clicks")
    for name, values in (
        ("click -> wrapping token (ephemeral)", [a.to_ephemeral for a in accesses]),
        ("click -> wrapping token (DM)", [a.to_dm for a in accesses]),
        ("click -> 200 (ack)", [a.ack for a in accesses]),
    ):
        p50, p99 = (_percentile(values, share) * 1000 for share in (0.5, 0.99))
        print(f"  {name:38s} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    print(
        f"  floor: {NECESSARY_VAULT_REQUESTS} Vault requests x {rtt_ms:g} ms = {floor:g} ms;"
        f" goal p50 <= {floor + GOAL_P50_MS:g} ms, p99 <= {floor + GOAL_P99_MS:g} ms"
    )
    per_access = [sum(a.vault_requests.values()) for a in accesses]
    paths: Counter[str] = sum((a.vault_requests for a in accesses), Counter())
    by_path = ", ".join(f"{path} {n / len(accesses):g}" for path, n in sorted(paths.items()))
    print(
        f"  Vault requests per access: mean {statistics.mean(per_access):g}, max"
        f" {max(per_access)} (necessary: {NECESSARY_VAULT_REQUESTS})   {by_path}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--vault-rtt-ms", type=float, default=20.0)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(bench_database(args.database, folder))
        accesses = measure(url, folder, args.clicks, args.vault_rtt_ms)
        report(accesses, args.vault_rtt_ms, args.database)


if __name__ == "__main__":
    main()
