"""`make demo`: a whole incident, played against the Slack and Vault emulators, on SQLite.

No Slack workspace, no Vault and no PostgreSQL are needed: the Vault emulator's database engine
runs detached, so the credential it hands out logs in nowhere. Prints what each person would see
in Slack, then the audit summary and the result of `gatehouse audit verify`. With `--keep DIR`
the database and the policy stay in DIR, and the last lines give the command that checks the
audit chain again.
"""

import argparse
import contextlib
import json
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hvac
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.log_setup import configure_logging
from bot.services.incidents import build_summary
from tests.emulators.slack import SlackEmulator, running_slack
from tests.emulators.slack.client import SlackClient
from tests.emulators.vault import VaultEmulator, running_vault
from tests.harness import EXAMPLE_POLICY, archiving_at_once, bot_settings, running_gatehouse
from tests.specs import SpecFilesMissing
from tests.tools.vault_setup import run_setup_script

T = TypeVar("T")
PEOPLE = {
    "U0ONCALL1": "ada (on call)",
    "U0ONCALL2": "grace (on call)",
    "U0LEAD1": "linus (ML lead)",
    "U0SEC1": "radia (security)",
}
NOWHERE = "postgresql://{{username}}:{{password}}@db.invalid:5432/ml"
REPO = Path(__file__).resolve().parents[1]
DATABASE_FILE = "gatehouse.db"
POLICY_FILE = "policy.yaml"


def say(text: str = "") -> None:
    print(text, flush=True)


def plain(text: str) -> str:
    """Slack mrkdwn as a reader sees it."""
    text = re.sub(
        r"<@([A-Z0-9]+)(?:\|[^>]*)?>", lambda m: "@" + PEOPLE.get(m.group(1), m.group(1)), text
    )
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<#([A-Z0-9]+)>", r"#\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def rendered(blocks: list[dict[str, Any]] | None, fallback: str) -> str:
    lines: list[str] = []
    for block in blocks or []:
        if block.get("type") in ("section", "header") and "text" in block:
            lines.append(block["text"]["text"])
        elif block.get("type") == "section":  # labelled fields
            lines.append(" · ".join(field["text"].replace("\n", ": ") for field in block["fields"]))
        elif block.get("type") == "context":
            lines += [element.get("text", "") for element in block["elements"]]
        elif block.get("type") == "actions":
            lines.append("  ".join(f"[{e['text']['text']}]" for e in block["elements"]))
    return plain("\n".join(lines) or fallback)


def show(who: str, where: str, text: str) -> None:
    say(f"── {who} · {where}")
    for line in text.splitlines():
        say(f"   {line}")


def wait_for(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + 20
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"demo stopped: {what} did not happen")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.demo", description=__doc__)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="keep the SQLite database and the policy in DIR (created if needed), to look at "
        "afterwards; without it they live in a temporary folder removed at the end",
    )
    args = parser.parse_args(argv)
    configure_logging(json=False, level="WARNING")  # the transcript is the output
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-demo-")))
        else:
            state = args.keep.resolve()
            state.mkdir(parents=True, exist_ok=True)
            if (state / DATABASE_FILE).exists():
                raise SystemExit(
                    f"demo: {state / DATABASE_FILE} exists already; keep the demo in another folder"
                )
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-setup-")))
        try:
            slack = stack.enter_context(running_slack())
            vault = stack.enter_context(running_vault(database_detached=True))
        except SpecFilesMissing as error:
            raise SystemExit(str(error)) from None
        exit_code = play_incident(slack, vault, state, scratch, kept=args.keep is not None)
    sys.exit(exit_code)


def play_incident(
    slack: SlackEmulator, vault: VaultEmulator, state: Path, scratch: Path, *, kept: bool
) -> int:
    """The incident, the audit summary, `gatehouse audit verify`, and how to look further."""
    say("Gatehouse demo: Slack and Vault are emulated on this machine; the bot is real.")
    say("The Vault emulator's database engine runs with no database behind it, so the")
    say("credential it hands out is real in Vault but logs in nowhere.")
    if kept:
        say(f"The database and the policy are kept in {state}.\n")
    else:
        say(f"The database and the policy are in {state}, removed at the end.\n")
    setup = run_setup_script(vault, NOWHERE, scratch)
    for user_id, name in PEOPLE.items():
        slack.add_user(user_id, name.split()[0])
    room = slack.add_channel("war-room", members=list(PEOPLE))
    policy = state / POLICY_FILE
    shutil.copyfile(archiving_at_once(EXAMPLE_POLICY), policy)  # archived at the close
    database_url = f"sqlite:///{state / DATABASE_FILE}"
    settings = bot_settings(
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_api_url=slack.api_url,
        vault_addr=vault.url,
        vault_auth="approle",
        vault_role_id=setup.role_id,
        vault_secret_id=setup.secret_id,
        database_url=database_url,
        policy_path=policy,
    )
    with running_gatehouse(settings) as bot:
        play(slack, SlackClient(slack, bot.events_url), room, vault.url)
        incident_id = next(iter(_incidents(bot)))
        summary = build_summary(uow=bot.gatehouse.uow, incident_id=incident_id)
        say("\n════ Audit summary (the report uploaded to the channel) ════\n")
        say(plain(summary.to_markdown()))
    say("════ gatehouse audit verify ════")
    result = CliRunner().invoke(cli, ["audit", "verify", "--database", database_url])
    say(result.output.strip())
    say()
    if kept:
        say("Check the chain yourself, against the head the summary posted in Slack:")
        say("  " + verify_command(database_url, f"{summary.head_seq}:{summary.head_hash}"))
    else:
        say("To keep the database and the policy and check the chain yourself:")
        keep = Path(tempfile.gettempdir()) / "gatehouse-demo"
        demo = [sys.executable, "-m", "tests.demo", "--keep", str(keep)]
        say(f"  cd {shlex.quote(str(REPO))} && {shlex.join(demo)}")
    return result.exit_code


def verify_command(database_url: str, anchor: str) -> str:
    """`gatehouse audit verify` as a shell command that works from any folder."""
    gatehouse = Path(sys.executable).parent / "gatehouse"
    program = shlex.quote(str(gatehouse)) if gatehouse.exists() else "gatehouse"
    return (
        f"{program} audit verify --database {shlex.quote(database_url)} "
        f"--anchor {shlex.quote(anchor)}"
    )


def _incidents(bot: Any) -> list[str]:
    with bot.gatehouse.uow() as tx:
        return [incident.id for incident in tx.incidents.list_open()] or [
            event.entry.incident_id for event in tx.audit.events() if event.entry.incident_id
        ]


def play(slack: SlackEmulator, people: SlackClient, room: str, vault_url: str) -> None:
    def command(user: str, channel: str, text: str) -> None:
        name, _, rest = text.partition(" ")
        say(f"\n▶ {PEOPLE[user]} types: {text}")
        result = people.slash_command(name, rest, user_id=user, channel_id=channel)
        if result.text:
            show(PEOPLE[user], "only you can see this", plain(result.text))

    command("U0ONCALL1", room, "/incident open Ranker p99 over 2s sev1")
    channel = wait_for(
        lambda: next((c for c in slack.workspace.channels.values() if c.pins), None),
        "the incident channel",
    )
    card = slack.messages(channel.id)[0]
    show(
        "everyone",
        f"#{channel.name} (topic: {plain(channel.topic['value'])})",
        rendered(card.blocks, card.text) + "\n📌 pinned",
    )
    channel.members.extend(["U0ONCALL2", "U0LEAD1", "U0SEC1"])

    command(
        "U0ONCALL2",
        channel.id,
        "/request-access feature-store-rw 1h fix the bad ranker feature row",
    )
    request = wait_for(
        lambda: next(
            (m for m in slack.messages(channel.id) if "gatehouse.approve" in json.dumps(m.blocks)),
            None,
        ),
        "the approval card",
    )
    show("everyone", f"#{channel.name}", rendered(request.blocks, request.text))
    request_id = re.findall(r"R-[A-Z2-7]{8}", request.text)[0]
    for approver in ("U0LEAD1", "U0SEC1"):
        say(f"\n▶ {PEOPLE[approver]} clicks [Approve]")
        people.block_action(
            approver, "gatehouse.approve", request_id, channel_id=channel.id, message_ts=request.ts
        )
        time.sleep(0.3)
    delivered = wait_for(
        lambda: next(
            (e for e in slack.ephemerals("U0ONCALL2") if "vault unwrap" in json.dumps(e.blocks)),
            None,
        ),
        "the credential",
    )
    updated = wait_for(
        lambda: next(
            (
                m
                for m in [slack.channel(channel.id).find(request.ts)]
                if m is not None and "2 of 2" in json.dumps(m.blocks)
            ),
            None,
        ),
        "the card, decided",
    )
    show(
        "everyone",
        f"#{channel.name} (the card, updated in place)",
        rendered(updated.blocks, updated.text),
    )
    show(
        PEOPLE["U0ONCALL2"],
        f"#{channel.name}, only you can see this (also sent by DM)",
        rendered(delivered.blocks, delivered.text),
    )
    token = re.search(r"VAULT_TOKEN=(\S+) vault unwrap", json.dumps(delivered.blocks))
    assert token is not None
    secret = hvac.Client(url=vault_url, token=token.group(1)).sys.unwrap()["data"]
    say(f"\n▶ {PEOPLE['U0ONCALL2']} runs the unwrap command and gets user {secret['username']}")
    say("   (and a password that never touched Slack, the bot's database or its logs; here no")
    say("   database stands behind it, so it logs in nowhere)")

    command("U0ONCALL2", channel.id, f"/access extend {request_id} 30m the rollback is slow")
    asked = wait_for(
        lambda: next((m for m in slack.thread(channel.id, request.ts) if "asks" in m.text), None),
        "the extension ask",
    )
    show("everyone", f"#{channel.name}, in the card's thread", plain(asked.text))
    say(f"\n▶ {PEOPLE['U0LEAD1']} clicks [Approve extension]")
    people.block_action(
        "U0LEAD1",
        "gatehouse.extend_approve",
        request_id,
        channel_id=channel.id,
        message_ts=request.ts,
    )
    extended = wait_for(
        lambda: next(
            (m for m in slack.thread(channel.id, request.ts) if "extended until" in m.text), None
        ),
        "the extension",
    )
    show("everyone", f"#{channel.name}, in the card's thread", plain(extended.text))

    command(
        "U0ONCALL2",
        channel.id,
        "/request-access serving-cluster-exec 1h pods crash-looping, nobody answers --break-glass",
    )
    glass = wait_for(
        lambda: next(
            (
                m
                for m in slack.messages(channel.id)
                if "by break-glass" in m.text and "is active until" in json.dumps(m.blocks)
            ),
            None,
        ),
        "the break-glass card, with access active",
    )
    show("everyone", f"#{channel.name}", rendered(glass.blocks, glass.text))
    say("   (nobody reviews it before the close: the summary flags it)")

    command("U0ONCALL1", channel.id, "/incident close rolled back the ranker feature row")
    wait_for(lambda: slack.channel(channel.id).archived, "the archive")
    summary = next(m for m in slack.messages(channel.id) if "audit summary" in m.text)
    show("everyone", f"#{channel.name}", rendered(summary.blocks, summary.text) + "\n📌 pinned")
    uploaded = [f for m in slack.messages(channel.id) for f in (m.files or [])]
    say(f"── everyone · #{channel.name}: 📎 {uploaded[0].get('title') if uploaded else 'report'}")
    report = next((f for f in slack.files() if f.title and "audit report" in f.title), None)
    for line in (report.content or b"").decode().splitlines() if report else []:
        if "Chain head" in line:  # in the report, where whoever checks the chain reads it
            say(f"   {line}")
    say(f"── #{channel.name} is archived.")


if __name__ == "__main__":
    main()
