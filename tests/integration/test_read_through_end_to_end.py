"""A whole incident read as each person reads it: the bot over signed HTTP against the Slack
and Vault emulators, on SQLite and PostgreSQL, the clock moved for the reminder, the time-out,
the expiry warning and the end of access.

The commander opens the incident with the form; the requester files with the form, tries to
approve their own request, is denied with a reason, files again, is reminded about, approved
from a DM, extends, is warned, expires; another request times out; the command is handed off;
break-glass is reviewed from a DM; the incident closes. Then every message each person has is
read as Slack shows it (`tests.tools.readable`) and its key wording asserted: who is told
what, once, naming the resource and the cause, with no mention of anyone who need not act.
"""

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from bot.bootstrap import utc_now
from bot.domain.access import RequestState
from bot.slack import ids
from tests.emulators.slack.models import View
from tests.integration.test_slack_end_to_end import PEOPLE, Scene, request_id_in, running_scene
from tests.integration.test_tasks_end_to_end import about, dm_click, ends_at, one_about, sweep_at
from tests.integration.vault_support import MlDatabase
from tests.tools.readable import read_blocks, read_message, read_text
from tests.tools.vault_setup import SetUpVault
from tests.waiting import eventually

COMMANDER, REQUESTER, ADMIN = "U0ONCALL1", "U0ONCALL2", "U0ADMIN1"
LEADS = ("U0LEAD1", "U0LEAD2", "U0LEAD3")
SECURITY = ("U0SEC1", "U0SEC2")
NAMES: dict[str, str] = dict(PEOPLE)
_JARGON = re.compile(r"GATEHOUSE_|[0-9a-f]{64}|\(s\)|incident\.[a-z_]+:")


@pytest.fixture
def scene(database_url: str, set_up_vault: SetUpVault, ml_database: MlDatabase) -> Iterator[Scene]:
    with running_scene(database_url, set_up_vault, ml_database) as made:
        yield made


def reads(message: Any) -> str:
    """A message as its reader reads it now (redrawn in place), people by name."""
    return read_message(message.text, message.blocks, NAMES)


def private(scene: Scene, user: str) -> list[str]:
    """Everything `user` reads privately: DMs as they read now, then what only they saw."""
    dms = [reads(m) for m in scene.slack.dms(user)]
    only_them = [read_message(e.text, e.blocks, NAMES) for e in scene.slack.ephemerals(user)]
    return dms + only_them


def dm_with(scene: Scene, user: str, *words: str) -> list[str]:
    return [text for text in private(scene, user) if all(w in text for w in words)]


def thread(scene: Scene, channel: str, card: Any) -> list[str]:
    return [read_text(m.text, NAMES) for m in scene.slack.thread(channel, card.ts)]


def submit(scene: Scene, user: str, callback: str, values: dict[str, Any]) -> None:
    answer = scene.people.view_submission(user, callback, values)
    assert answer.status == 200 and "errors" not in answer.text, answer.text


def selected(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def typed(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def answer(scene: Scene, command: str, text: str, user: str, channel: str) -> str:
    """What a command answers its user: the ack's text, or what it posts after."""
    before = len(scene.slack.responses(user))
    acked = scene.command(command, text, user, channel)
    if acked.text:
        return read_text(acked.text, NAMES)
    posted = eventually(lambda: scene.slack.responses(user)[before:])[0]
    return read_message(str(posted.body.get("text", "")), posted.body.get("blocks"), NAMES)


def decided(scene: Scene, user: str, request_id: str) -> bool:
    """The user's task about the request no longer offers its buttons."""
    return "[Approve]" not in reads(about(scene, user, request_id)[0])


def extension_task(scene: Scene, user: str) -> Any:
    return next((m for m in scene.slack.dms(user) if "asks to extend" in m.text), None)


def home_of(scene: Scene, user: str) -> str:
    before = scene.slack.home_tab(user)
    opened = scene.people.event(
        {"type": "app_home_opened", "user": user, "tab": "home", "event_ts": "1.0"}
    )
    assert opened.status == 200

    def published() -> View | None:
        home = scene.slack.home_tab(user)
        return home if home is not None and home is not before else None

    return read_blocks(eventually(published).body["blocks"], NAMES)


def test_every_message_reads_well_to_each_person(scene: Scene) -> None:
    slack = scene.slack

    # -- the commander opens the incident with the form ------------------------------------
    scene.command("/incident", "", COMMANDER, scene.general)
    eventually(lambda: [v for v in slack.views(COMMANDER) if not v.closed])
    submit(
        scene,
        COMMANDER,
        ids.OPEN_INCIDENT_VIEW,
        {
            "title": {"title": typed("Ranker p99 over 2s")},
            "severity": {"severity": selected("sev2")},
        },
    )
    channel = scene.incident_channel()
    channel.members.extend(p for p in PEOPLE if p not in channel.members)
    (incident_card,) = [m for m in slack.messages(channel.id) if m.ts in slack.pins(channel.id)]
    card_reads = reads(incident_card)
    assert "Ranker p99 over 2s" in card_reads and "Commander: @ada" in card_reads
    assert "[Request access] [Hand off] [Close]" in card_reads

    # -- the requester files with the form; tries to approve it themselves -----------------
    scene.command("/request-access", "", REQUESTER, channel.id)
    form = eventually(lambda: [v for v in slack.views(REQUESTER) if not v.closed])[-1]
    offered = json.dumps(form.body)
    assert "inference-logs-ro" in offered and "Use it now, review after" in offered
    submit(
        scene,
        REQUESTER,
        ids.REQUEST_ACCESS_VIEW,
        {
            "resource": {"resource": selected("inference-logs-ro")},
            "duration": {"duration": selected("30m")},
            "reason": {"reason": typed("read the ranker logs")},
        },
    )
    first_card = scene.card(channel.id, "read the ranker logs")
    denied = request_id_in(first_card)
    first = reads(first_card)
    assert first.startswith("@grace requests `inference-logs-ro` for 30m")
    assert "Can approve: 3 people from `ml-leads`, each asked privately" in first
    assert "<@" not in json.dumps(first_card.blocks).replace("<@U0ONCALL2>", "")
    tasks = {lead: one_about(scene, lead, denied) for lead in LEADS}
    for task in tasks.values():
        assert reads(task).startswith(
            f"🙋 Waiting on you · {denied}\n@grace asks for `inference-logs-ro` for 30m in #"
        )
        assert "Reason: read the ranker logs" in reads(task) and "[Approve] [Deny]" in reads(task)

    scene.click(REQUESTER, ids.APPROVE, channel.id, first_card.ts, denied)
    eventually(lambda: dm_with(scene, REQUESTER, "your own"))
    scene.click("U0SEC1", ids.APPROVE, channel.id, first_card.ts, denied)
    (refusal,) = eventually(lambda: dm_with(scene, "U0SEC1", "not an approver"))
    assert "@linus" in refusal  # who can, by name

    # -- a lead denies it from their DM, with a reason ------------------------------------
    dm_click(scene, "U0LEAD2", ids.DENY, tasks["U0LEAD2"], denied)
    deny_form = eventually(lambda: slack.views("U0LEAD2"))[-1]
    form_reads = json.dumps(deny_form.body)
    assert "read the ranker logs" in form_reads and "the requester is told" in form_reads
    scene.people.view_submission(
        "U0LEAD2",
        ids.DENY_REASON_VIEW,
        {"deny_reason": {"reason": typed("use the dashboards")}},
        view_id=deny_form.id,
    )
    eventually(lambda: scene.request_state(denied) is RequestState.DENIED)
    (told,) = eventually(lambda: dm_with(scene, REQUESTER, denied, "denied"))
    assert told == (
        f"⛔ @barbara denied your request for `inference-logs-ro` (30m): use the dashboards "
        f"({denied})"
    )
    denial_line = eventually(
        lambda: [t for t in thread(scene, channel.id, first_card) if "⛔" in t]
    )
    assert denial_line == [
        "⛔ @barbara denied the request for `inference-logs-ro` (30m): use the dashboards"
    ]
    for lead in LEADS:
        eventually(partial(decided, scene, lead, denied))
        redrawn = reads(about(scene, lead, denied)[0])
        assert redrawn.startswith(f"Access request · {denied}"), redrawn
        assert "⛔ @barbara denied @grace's request" in redrawn

    # -- two approvals: a reminder to the undecided, the second approval from it -----------
    scene.command(
        "/request-access", "feature-store-rw 30m backfill stale features", REQUESTER, channel.id
    )
    card = scene.card(channel.id, "backfill stale features")
    request_id = request_id_in(card)
    scene.command(
        "/request-access", "inference-logs-ro 30m compare with yesterday", REQUESTER, channel.id
    )
    waiting_card = scene.card(channel.id, "compare with yesterday")
    timed_out = request_id_in(waiting_card)
    approvers = (*LEADS, *SECURITY)
    for approver in approvers:
        one_about(scene, approver, request_id)
    dm_click(scene, "U0LEAD1", ids.APPROVE, about(scene, "U0LEAD1", request_id)[0], request_id)
    eventually(lambda: "You approved it" in reads(about(scene, "U0LEAD1", request_id)[0]))
    assert "it waits for 1 more approval." in reads(about(scene, "U0LEAD1", request_id)[0])

    sweep_at(scene, utc_now() + timedelta(minutes=11))
    for approver in approvers[1:]:
        (reminder,) = [m for m in about(scene, approver, request_id) if "Still" in reads(m)]
        assert reads(reminder).startswith(f"⏰ Still waiting on you · {request_id}")
        assert "[Approve] [Deny]" in reads(reminder)
    note = [t for t in thread(scene, channel.id, card) if "reminded" in t]
    assert note == [
        "⏰ The request for `feature-store-rw` (30m) is still waiting for 1 more approval; "
        "the 4 approvers who have not decided were reminded privately."
    ]
    dm_click(scene, "U0SEC1", ids.APPROVE, about(scene, "U0SEC1", request_id)[-1], request_id)
    eventually(lambda: scene.request_state(request_id) is RequestState.ACTIVE)
    credential = eventually(lambda: dm_with(scene, REQUESTER, request_id, "vault unwrap"))[0]
    assert credential.startswith(f"🔑 Your `feature-store-rw` credential is ready · {request_id}")
    assert "[Extend]" in credential
    ready = eventually(lambda: [t for t in thread(scene, channel.id, card) if "ready" in t])
    assert ready[0].startswith(
        "🔓 The access to `feature-store-rw` is ready: the credential was sent to the "
        "requester by DM. It ends "
    )

    # -- /access, /incident status, App Home ------------------------------------------------
    listed = answer(scene, "/access", "", REQUESTER, channel.id)
    assert f"🔓 {request_id} `feature-store-rw` — until" in listed
    status = answer(scene, "/incident", "status", COMMANDER, channel.id)
    assert "Ranker p99 over 2s" in status
    mine = home_of(scene, REQUESTER)
    assert f"🔓 {request_id} `feature-store-rw` — ends" in mine and "[Extend] [Revoke]" in mine
    theirs = home_of(scene, "U0LEAD2")
    assert f"{timed_out} · @grace asks for `inference-logs-ro` (30m)" in theirs

    # -- extend: a task for each approver, decided from a DM, the requester told once ------
    asked_answer = answer(
        scene, "/access", f"extend {request_id} 30m still backfilling", REQUESTER, channel.id
    )
    assert "each approver who may decide has it as a task" in asked_answer
    extension_tasks = {a: eventually(partial(extension_task, scene, a)) for a in approvers}
    task_reads = reads(extension_tasks["U0LEAD3"])
    assert task_reads.startswith(f"🙋 Waiting on you · extension of {request_id}")
    assert "@grace asks to extend `feature-store-rw` by 30m" in task_reads
    assert "Reason: still backfilling" in task_reads
    assert "[Approve extension] [Deny extension]" in task_reads
    asked = eventually(lambda: [t for t in thread(scene, channel.id, card) if "extend" in t])
    assert "each approver who may decide was asked privately" in asked[0]
    dm_click(scene, "U0LEAD3", ids.EXTEND_APPROVE, extension_tasks["U0LEAD3"], request_id)
    (extended,) = eventually(lambda: dm_with(scene, REQUESTER, "is extended until"))
    assert extended.startswith("⏱️ Your access to `feature-store-rw` is extended until")
    assert "approved by @ken" in extended

    # -- the untouched request times out; the requester is told once, by DM ----------------
    sweep_at(scene, utc_now() + timedelta(minutes=31))
    eventually(lambda: scene.request_state(timed_out) is RequestState.TIMED_OUT)
    told_of_it = eventually(lambda: dm_with(scene, REQUESTER, timed_out, "timed out"))
    assert len(told_of_it) == 1, private(scene, REQUESTER)
    (timeout_dm,) = told_of_it
    assert timeout_dm == (
        f"⌛ Your request for `inference-logs-ro` (30m) timed out: nobody decided within 30m. "
        f"({timed_out})"
    )
    assert thread(scene, channel.id, waiting_card)[-1] == (
        "⌛ The request for `inference-logs-ro` (30m) timed out: nobody decided within 30m."
    )

    # -- hand-off; break-glass reviewed from a DM by the new commander ----------------------
    scene.command("/incident", "commander @frances", COMMANDER, channel.id)
    handed = eventually(
        lambda: [reads(m) for m in slack.messages(channel.id) if "handed command" in m.text]
    )
    assert handed[0].startswith("@ada handed command of INC-") and handed[0].endswith(
        " to @frances."
    )
    scene.command(
        "/request-access",
        "serving-cluster-exec 10m pods crash-looping --break-glass",
        REQUESTER,
        channel.id,
    )
    glass_card = scene.card(channel.id, "Deny and revoke")
    glass = request_id_in(glass_card)
    glass_reads = reads(glass_card)
    assert glass_reads.startswith("# 🚨 Break-glass: serving-cluster-exec\n@here @grace took")
    assert "its reviewers were asked privately" in glass_card.text
    review = eventually(lambda: [m for m in slack.dms(ADMIN) if glass in m.text])[0]
    assert reads(review).startswith(f"🚨 Review break-glass · {glass}")
    assert "[Confirm it was needed] [Deny and revoke]" in reads(review)
    dm_click(scene, ADMIN, ids.APPROVE, review, glass)
    (confirmed,) = eventually(lambda: dm_with(scene, REQUESTER, glass, "confirmed on review"))
    assert confirmed.startswith(
        "✅ Your access to `serving-cluster-exec` taken by break-glass was confirmed on review "
        "by @frances."
    )

    # -- warned before the end, then expired: the credential DM says so, without buttons ---
    end = ends_at(scene, request_id)
    sweep_at(scene, end - timedelta(minutes=5))
    (warning,) = eventually(
        lambda: [t for t in dm_with(scene, REQUESTER, request_id) if t.startswith("⏳ Your")]
    )
    assert warning.startswith("⏳ Your access to `feature-store-rw` ends ")
    sweep_at(scene, end + timedelta(minutes=1))
    eventually(lambda: scene.request_state(request_id) is RequestState.EXPIRED)
    eventually(lambda: not [m for m in slack.dms(REQUESTER) if "vault unwrap" in reads(m)])
    (ended,) = [reads(m) for m in slack.dms(REQUESTER) if "🔑" in reads(m) and request_id in m.text]
    assert "⌛ Your access to `feature-store-rw` ended: it expired at" in ended
    assert "[" not in ended  # no button left

    reviewed = reads(slack.dms("U0LEAD1")[-1])
    assert reviewed.startswith(f"Break-glass review · {glass}") and "[" not in reviewed
    assert "✅ Break-glass confirmed on review by @frances." in reviewed
    # A reminder, once decided, is one line under the task, not a second copy of it.
    (task, reminder_now) = about(scene, "U0LEAD2", timed_out)
    assert reads(reminder_now).startswith(f"› ⏰ Reminder about {timed_out}, decided since: ⌛")
    assert "timed out" in reads(task) and "[Approve]" not in reads(task)

    # -- the close -----------------------------------------------------------------------
    scene.command("/incident", "close rolled back the ranker", ADMIN, channel.id)
    summary = eventually(
        lambda: next((m for m in slack.messages(channel.id) if "audit summary" in m.text), None)
    )
    summary_reads = reads(summary)
    assert summary_reads.startswith("# ✅ INC-") and "Ranker p99 over 2s" in summary_reads

    # -- read through: each person's messages, and the channel's -----------------------
    everyone = [reads(m) for m in slack.messages(channel.id)]
    for text in everyone:
        assert not _JARGON.search(text), text
    for message in slack.thread(channel.id, card.ts) + slack.thread(channel.id, first_card.ts):
        assert f"<@{REQUESTER}>" not in message.text, message.text  # told by DM, not pinged
    # The requester is told each outcome once: one DM per request and outcome.
    outcomes = [t for t in private(scene, REQUESTER) if t.startswith(("⛔", "⌛", "⏱️", "✅"))]
    assert len(outcomes) == len(set(outcomes)), outcomes
    for user in (*approvers, COMMANDER, ADMIN, REQUESTER):
        for text in private(scene, user):
            assert "(s)" not in text and not re.search(r"[0-9a-f]{64}", text), text
    assert slack.unmodelled_calls() == []
