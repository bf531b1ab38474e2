"""The bot killed (SIGKILL) at every step boundary of deny, cancel, time-out, expiry, revoke,
extension (ask, approve and apply, deny), break-glass deny, issue and close, then restarted:
every card ends in its final state with no live decision buttons once decided, each outcome is
told once in the card's thread, the credential reaches its DM at most once, and the database
holds the final state.

`notify.posted` kills the bot right after a thread reply went out and before the notifier saved
its cursor: the restarted notifier is in doubt about that reply and must find it in Slack
rather than post it again.

One `gatehouse run` process at a time against the emulators: a SQLite database for every case,
and a PostgreSQL one for a subset. The step is named in the crash file the bot reads
(bot/services/crashpoints.py).
"""

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.access import RequestState
from bot.domain.extension import ExtensionState
from bot.slack import ids
from tests.emulators.slack.state import Channel
from tests.fleet import Fleet, Replica, credential_posts, eventually, running_fleet
from tests.harness import EXAMPLE_POLICY, archiving_at_once

DECISION_ACTIONS = {ids.APPROVE, ids.DENY, ids.EXTEND_APPROVE, ids.EXTEND_DENY}
REQUEST_ID = re.compile(r"R-[A-Z2-7]{8}")
REQUESTER, APPROVER, COMMANDER = "U0ONCALL2", "U0LEAD1", "U0ONCALL1"
# On the time-out's bot, a pending request times out after this many seconds; its approvers
# are reminded once before that.
TIMEOUT_SECONDS = 4
# Points at which the change is committed and its outcome not yet told in the thread.
BEFORE_TELLING = {
    "deny.recorded",
    "cancel.recorded",
    "timeout.recorded",
    "revoke.recorded",
    "extension.asked",
    "extension.decided",
    "extension.applied",
    "breakglass.denied",
}
_names = itertools.count(1)


@dataclass(frozen=True)
class Shown:
    """What Slack shows of one request: its card now and the replies in its thread."""

    card: str
    actions: set[str]
    thread: list[str]

    def told(self, wording: str) -> int:
        return len([text for text in self.thread if wording in text])


# -- fleets -------------------------------------------------------------------------------------


def _short_timeout_policy(folder: Path) -> Path:
    policy = folder / "policy-short-timeout.yaml"
    text = archiving_at_once(EXAMPLE_POLICY).read_text()
    text = text.replace("request_timeout: 30m", f"request_timeout: {TIMEOUT_SECONDS}s")
    text = text.replace("reminder_after: 10m", "reminder_after: 1s")
    assert f"request_timeout: {TIMEOUT_SECONDS}s" in text and "reminder_after: 1s" in text
    policy.write_text(text)
    return policy


@pytest.fixture(scope="module")
def sqlite_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("kill-sqlite")
    url = f"sqlite:///{folder / 'gatehouse.db'}"
    with running_fleet(url, folder, GATEHOUSE_SWEEP_INTERVAL="0.5") as fleet:
        fleet.start()
        yield fleet


@pytest.fixture(scope="module")
def postgresql_fleet(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    folder: Path = tmp_path_factory.mktemp("kill-postgresql")
    with running_fleet(postgres_url, folder, GATEHOUSE_SWEEP_INTERVAL="0.5") as fleet:
        fleet.start()
        yield fleet


def bot(fleet: Fleet) -> Replica:
    return fleet.replicas[-1]


def ready(fleet: Fleet) -> None:
    """One live bot with the fleet's own settings, nothing armed, nothing left to do."""
    fleet.crash_file.unlink(missing_ok=True)
    if not bot(fleet).alive:
        fleet.start()
    eventually(fleet.settled, "settled before the case")


def dies_then_restarts(
    fleet: Fleet,
    point: str,
    *,
    done: Callable[[], bool],
    told: Callable[[], int],
    timeout: float = 30,
) -> None:
    """The bot dies at `point`; another starts and finishes the work (`done`, and settled:
    nothing mid-issue or mid-revocation, the notifier's cursor at the chain's head).

    `told` counts the outcome's replies in the thread: none yet when the bot dies as the
    change is recorded, exactly one when it dies after posting it (before saving its cursor)."""
    assert bot(fleet).died_by_sigkill(timeout), f"the bot did not die at {point}"
    assert not fleet.crash_file.exists()
    if point in BEFORE_TELLING:
        assert told() == 0, f"told before {point}"
    if point == "notify.posted":
        assert told() == 1, "the outcome was not out when the bot died"
    fleet.start()
    eventually(lambda: done() and fleet.settled(), f"recovery after {point}")


def consistent(fleet: Fleet) -> None:
    """Vault holds nothing our records do not own; no audit event lost; the chain verifies."""
    eventually(lambda: not fleet.orphans(), "nothing orphaned in Vault")
    assert fleet.audit_gaps() == []
    verified = fleet.audit_verify()
    assert verified.endswith("ok"), verified


# -- Slack, as the people see it ----------------------------------------------------------------


def answered(fleet: Fleet, send: Callable[[], Any]) -> Any:
    """Send one signed request: answered 200, or cut off because the bot died at the point
    armed (its work after the ack may start before the answer is written)."""
    try:
        result = send()
    except httpx.TransportError:
        assert bot(fleet).died_by_sigkill(), "no answer, and the bot did not die"
        return None
    assert result.status == 200
    return result


def open_incident(fleet: Fleet, flow: str) -> Channel:
    return fleet.open_incident(bot(fleet), f"kill {flow} {next(_names)}")


def file_request(fleet: Fleet, channel: Channel, text: str, marker: str) -> tuple[str, Any]:
    result = bot(fleet).people.slash_command(
        "/request-access", f"{text} {marker}", user_id=REQUESTER, channel_id=channel.id
    )
    assert result.status == 200
    card = fleet.card(channel.id, marker)
    found = REQUEST_ID.search(card.text)
    assert found is not None, card.text
    eventually(fleet.settled, "the card posted and its event passed")  # nothing left to arm
    return found.group(0), card


def click(
    fleet: Fleet, user: str, action: str, channel: Channel, card: Any, request_id: str
) -> None:
    people = bot(fleet).people
    answered(
        fleet,
        lambda: people.block_action(
            user, action, request_id, channel_id=channel.id, message_ts=card.ts
        ),
    )


def deny_with_reason(
    fleet: Fleet,
    channel: Channel,
    card: Any,
    request_id: str,
    *,
    button: str,
    form: str,
    reason: str,
) -> None:
    """Deny from the card: the button opens a form, the form says why."""
    before = len(fleet.slack.views(APPROVER))
    click(fleet, APPROVER, button, channel, card, request_id)
    view = eventually(
        lambda: next(
            (v for v in fleet.slack.views(APPROVER)[before:] if v.body.get("callback_id") == form),
            None,
        ),
        "the deny form",
    )
    people = bot(fleet).people
    answered(
        fleet,
        lambda: people.view_submission(
            APPROVER,
            form,
            {"deny_reason": {"reason": {"type": "plain_text_input", "value": reason}}},
            view_id=view.id,
        ),
    )


def command(fleet: Fleet, channel: Channel, name: str, text: str, user: str = REQUESTER) -> Any:
    people = bot(fleet).people
    return answered(
        fleet, lambda: people.slash_command(name, text, user_id=user, channel_id=channel.id)
    )


def shown(fleet: Fleet, channel: Channel, card: Any) -> Shown:
    now = fleet.slack.channel(channel.id).find(card.ts)
    assert now is not None
    actions = {
        str(element.get("action_id"))
        for block in now.blocks or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }
    thread = [m.text for m in fleet.thread(channel.id, card)]
    return Shown(json.dumps(now.blocks, ensure_ascii=False), actions & DECISION_ACTIONS, thread)


def credential_dms(fleet: Fleet, request_id: str) -> int:
    return len(
        [
            blocks
            for blocks in credential_posts(fleet.slack, REQUESTER)
            if request_id in blocks and "vault unwrap" in blocks
        ]
    )


def state(fleet: Fleet, request_id: str) -> RequestState:
    return fleet.state(request_id)


def extension_state(fleet: Fleet, request_id: str) -> ExtensionState | None:
    with fleet.uow() as tx:
        request = tx.requests.get(request_id)
    assert request is not None
    return request.extensions[-1].state if request.extensions else None


def active_request(fleet: Fleet, channel: Channel, marker: str) -> tuple[str, Any]:
    """A request approved, issued and delivered, everything about it shown."""
    request_id, card = file_request(fleet, channel, "inference-logs-ro 30m", marker)
    click(fleet, APPROVER, ids.APPROVE, channel, card, request_id)
    eventually(
        lambda: state(fleet, request_id) is RequestState.ACTIVE and fleet.settled(),
        "access delivered and told",
    )
    return request_id, card


# -- the flows: each drives one flow with `point` armed, and checks the end -----------------------


def deny(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "deny")
    request_id, card = file_request(fleet, channel, "inference-logs-ro 30m", "deny-me")
    fleet.arm_crash(point)
    deny_with_reason(
        fleet,
        channel,
        card,
        request_id,
        button=ids.DENY,
        form=ids.DENY_REASON_VIEW,
        reason="not for this incident",
    )
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is RequestState.DENIED,
        told=lambda: shown(fleet, channel, card).told("denied"),
    )
    now = shown(fleet, channel, card)
    assert "denied" in now.card and "not for this incident" in now.card
    assert now.actions == set()
    assert now.told("denied") == 1, now.thread
    assert credential_dms(fleet, request_id) == 0


def cancel(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "cancel")
    request_id, card = file_request(fleet, channel, "inference-logs-ro 30m", "cancel-me")
    fleet.arm_crash(point)
    command(fleet, channel, "/access", f"cancel {request_id}")
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is RequestState.CANCELLED,
        told=lambda: shown(fleet, channel, card).told("cancelled"),
    )
    now = shown(fleet, channel, card)
    assert "cancelled" in now.card and now.actions == set()
    assert now.told("cancelled") == 1, now.thread
    assert credential_dms(fleet, request_id) == 0


def time_out(fleet: Fleet, point: str) -> None:
    """On a bot whose policy times requests out after a few seconds (the bot after it runs on
    the fleet's own settings); the reminder before the time-out is a thread reply too, so
    `notify.posted` is armed once the reminder is out."""
    default = dict(fleet.settings)
    fleet.settings["GATEHOUSE_POLICY"] = str(_short_timeout_policy(fleet.folder))
    bot(fleet).kill()
    try:
        short = fleet.start()[0]
    finally:
        fleet.settings.clear()
        fleet.settings.update(default)
    try:
        channel = open_incident(fleet, "timeout")
        request_id, card = file_request(fleet, channel, "inference-logs-ro 30m", "time-me-out")
        if point == "notify.posted":
            eventually(
                lambda: shown(fleet, channel, card).told("still waiting") or None, "reminder"
            )
            eventually(fleet.settled, "the reminder told")
        fleet.arm_crash(point)
        dies_then_restarts(
            fleet,
            point,
            done=lambda: state(fleet, request_id) is RequestState.TIMED_OUT,
            told=lambda: shown(fleet, channel, card).told("timed out: nobody decided"),
            timeout=TIMEOUT_SECONDS + 20,
        )
    finally:
        if short.alive:  # failed before it died: the next case gets a bot of its own
            short.kill()
    now = shown(fleet, channel, card)
    assert "timed out: nobody decided" in now.card and now.actions == set()
    assert now.told("timed out: nobody decided") == 1, now.thread


def expiry(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "expiry")
    # Long enough to be delivered and told before `notify.posted` is armed for the expiry.
    duration = "4s" if point == "notify.posted" else "2s"
    request_id, card = file_request(fleet, channel, f"inference-logs-ro {duration}", "expire-me")
    if point != "notify.posted":
        fleet.arm_crash(point)  # only a revocation reaches it: the expiry, at the grant's end
    click(fleet, APPROVER, ids.APPROVE, channel, card, request_id)
    if point == "notify.posted":
        eventually(
            lambda: state(fleet, request_id) is RequestState.ACTIVE and fleet.settled(),
            "access delivered and told",
        )
        assert state(fleet, request_id) is RequestState.ACTIVE, "expired before it was armed"
        fleet.arm_crash(point)
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is RequestState.EXPIRED,
        told=lambda: shown(fleet, channel, card).told("ended: it expired at"),
    )
    now = shown(fleet, channel, card)
    assert "ended: it expired at" in now.card and now.actions == set()
    assert now.told("ended: it expired at") == 1, now.thread
    assert now.told("is ready") == 1, now.thread
    assert credential_dms(fleet, request_id) == 1
    consistent(fleet)


def revoke(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "revoke")
    request_id, card = active_request(fleet, channel, "revoke-me")
    fleet.arm_crash(point)
    command(fleet, channel, "/access", f"revoke {request_id}")
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is RequestState.REVOKED,
        told=lambda: shown(fleet, channel, card).told("revoked it"),
    )
    now = shown(fleet, channel, card)
    assert "revoked it" in now.card and now.actions == set()
    assert now.told("revoked it") == 1, now.thread
    assert credential_dms(fleet, request_id) == 1
    consistent(fleet)


def _asked(fleet: Fleet, channel: Channel, request_id: str) -> None:
    command(fleet, channel, "/access", f"extend {request_id} 30m still drifting")


def extension_ask(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "extension ask")
    request_id, card = active_request(fleet, channel, "extend-ask")
    fleet.arm_crash(point)
    _asked(fleet, channel, request_id)
    dies_then_restarts(
        fleet,
        point,
        done=lambda: extension_state(fleet, request_id) is ExtensionState.PENDING,
        told=lambda: shown(fleet, channel, card).told("asks to extend"),
    )
    now = shown(fleet, channel, card)
    assert now.actions == {ids.EXTEND_APPROVE, ids.EXTEND_DENY}  # the extension waits on them
    assert now.told("asks to extend") == 1, now.thread
    assert state(fleet, request_id) is RequestState.ACTIVE
    assert credential_dms(fleet, request_id) == 1


def _pending_extension(fleet: Fleet, flow: str, marker: str) -> tuple[Channel, str, Any]:
    channel = open_incident(fleet, flow)
    request_id, card = active_request(fleet, channel, marker)
    _asked(fleet, channel, request_id)
    eventually(
        lambda: extension_state(fleet, request_id) is ExtensionState.PENDING and fleet.settled(),
        "the extension asked and told",
    )
    return channel, request_id, card


def extension_approve(fleet: Fleet, point: str) -> None:
    channel, request_id, card = _pending_extension(fleet, "extension approve", "extend-approve")
    with fleet.uow() as tx:
        request = tx.requests.get(request_id)
    assert request is not None and request.ends_at is not None
    ends_before = request.ends_at
    fleet.arm_crash(point)
    click(fleet, APPROVER, ids.EXTEND_APPROVE, channel, card, request_id)
    dies_then_restarts(
        fleet,
        point,
        done=lambda: extension_state(fleet, request_id) is ExtensionState.APPLIED,
        told=lambda: shown(fleet, channel, card).told("is extended until"),
    )
    with fleet.uow() as tx:
        request = tx.requests.get(request_id)
        grants = tx.grants.list_for_request(request_id)
    assert request is not None and request.ends_at is not None
    assert request.ends_at > ends_before and len(grants) == 1  # the same credential, renewed
    now = shown(fleet, channel, card)
    assert "Extended 1×" in now.card and now.actions == set()
    assert now.told("asks to extend") == 1, now.thread
    assert now.told("is extended until") == 1, now.thread
    assert state(fleet, request_id) is RequestState.ACTIVE
    assert credential_dms(fleet, request_id) == 1
    consistent(fleet)


def extension_deny(fleet: Fleet, point: str) -> None:
    channel, request_id, card = _pending_extension(fleet, "extension deny", "extend-deny")
    fleet.arm_crash(point)
    deny_with_reason(
        fleet,
        channel,
        card,
        request_id,
        button=ids.EXTEND_DENY,
        form=ids.EXTEND_DENY_VIEW,
        reason="wrap it up",
    )
    dies_then_restarts(
        fleet,
        point,
        done=lambda: extension_state(fleet, request_id) is ExtensionState.DENIED,
        told=lambda: shown(fleet, channel, card).told("denied"),
    )
    now = shown(fleet, channel, card)
    assert now.actions == set()
    assert now.told("asks to extend") == 1, now.thread
    assert now.told("denied") == 1, now.thread
    assert state(fleet, request_id) is RequestState.ACTIVE
    assert credential_dms(fleet, request_id) == 1


def break_glass_deny(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "break glass")
    request_id, card = file_request(
        fleet, channel, "serving-cluster-exec 10m --break-glass", "pods-down"
    )
    eventually(
        lambda: state(fleet, request_id) is RequestState.ACTIVE and fleet.settled(),
        "break-glass access delivered and told",
    )
    fleet.arm_crash(point)
    deny_with_reason(
        fleet,
        channel,
        card,
        request_id,
        button=ids.DENY,
        form=ids.DENY_REASON_VIEW,
        reason="page me next time",
    )
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is RequestState.REVOKED,
        told=lambda: shown(fleet, channel, card).told("denied it on review"),
    )
    now = shown(fleet, channel, card)
    assert "denied it on review" in now.card and "page me next time" in now.card
    assert now.actions == set()
    assert now.told("denied it on review") == 1, now.thread
    assert credential_dms(fleet, request_id) == 1
    consistent(fleet)


def issue(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "issue")
    request_id, card = file_request(fleet, channel, "inference-logs-ro 30m", "issue-me")
    fleet.arm_crash(point)
    click(fleet, APPROVER, ids.APPROVE, channel, card, request_id)
    lost = point == "issue.result_recorded"  # issued, recorded, never delivered: ended
    expected = RequestState.REVOKED if lost else RequestState.ACTIVE
    wording = "never delivered" if lost else "is ready"
    dies_then_restarts(
        fleet,
        point,
        done=lambda: state(fleet, request_id) is expected,
        told=lambda: shown(fleet, channel, card).told(wording),
    )
    now = shown(fleet, channel, card)
    assert now.actions == set()
    if lost:
        assert "ended:" in now.card and "never delivered" in now.card
        assert now.told("never delivered") == 1, now.thread
        assert credential_dms(fleet, request_id) == 0
    else:
        assert "is active until" in now.card
        assert now.told("is ready") == 1, now.thread
        assert credential_dms(fleet, request_id) == 1
    consistent(fleet)


def close(fleet: Fleet, point: str) -> None:
    channel = open_incident(fleet, "close")
    granted, granted_card = active_request(fleet, channel, "granted")
    pending, pending_card = file_request(fleet, channel, "inference-logs-ro 30m", "pending")
    eventually(fleet.settled, "the pending request shown")
    fleet.arm_crash(point)
    command(fleet, channel, "/incident", "close rolled back", user=COMMANDER)
    dies_then_restarts(
        fleet,
        point,
        done=lambda: fleet.slack.channel(channel.id).archived,
        told=lambda: len(
            [m for m in fleet.slack.messages(channel.id) if "audit summary" in m.text]
        ),
    )
    assert state(fleet, granted) is RequestState.REVOKED
    assert state(fleet, pending) is RequestState.CANCELLED
    granted_now, pending_now = (
        shown(fleet, channel, granted_card),
        shown(fleet, channel, pending_card),
    )
    assert "ended: the incident was closed" in granted_now.card and granted_now.actions == set()
    assert "was cancelled: the incident was closed" in pending_now.card
    assert pending_now.actions == set()
    assert granted_now.told("is ready") == 1, granted_now.thread
    assert credential_dms(fleet, granted) == 1
    summaries = [m for m in fleet.slack.messages(channel.id) if "audit summary" in m.text]
    assert len(summaries) == 1 and summaries[0].ts in fleet.slack.pins(channel.id)
    calls = [c for c in fleet.slack.calls if c.args.get("channel") == channel.id]
    archived_at = [i for i, c in enumerate(calls) if c.method == "conversations.archive"]
    assert archived_at == [len(calls) - 1]  # archived once, and nothing after it
    consistent(fleet)


FLOWS: dict[str, Callable[[Fleet, str], None]] = {
    "deny": deny,
    "cancel": cancel,
    "time-out": time_out,
    "expiry": expiry,
    "revoke": revoke,
    "extension-ask": extension_ask,
    "extension-approve": extension_approve,
    "extension-deny": extension_deny,
    "break-glass-deny": break_glass_deny,
    "issue": issue,
    "close": close,
}
POINTS: dict[str, tuple[str, ...]] = {
    "deny": ("deny.recorded", "notify.posted"),
    "cancel": ("cancel.recorded", "notify.posted"),
    "time-out": ("timeout.recorded", "notify.posted"),
    "expiry": (
        "revoke.intent_recorded",
        "revoke.vault_called",
        "revoke.result_recorded",
        "revoke.slack_posted",
        "notify.posted",
    ),
    "revoke": (
        "revoke.recorded",
        "notify.posted",
        "revoke.intent_recorded",
        "revoke.vault_called",
        "revoke.result_recorded",
    ),
    "extension-ask": ("extension.asked", "notify.posted"),
    "extension-approve": ("extension.decided", "extension.applied", "notify.posted"),
    "extension-deny": ("extension.decided", "notify.posted"),
    "break-glass-deny": (
        "breakglass.denied",
        "revoke.vault_called",
        "revoke.result_recorded",
        "notify.posted",
    ),
    "issue": (
        "issue.intent_recorded",
        "issue.vault_called",
        "issue.result_recorded",
        "issue.slack_posted",
        "notify.posted",
    ),
    # Nothing the close ends is told in a thread (its summary tells everyone): no notify.posted.
    "close": (
        "close.intent_recorded",
        "close.tree_revoked",
        "close.grants_confirmed",
        "close.slack_posted",
    ),
}
ON_POSTGRESQL = {
    ("deny", "notify.posted"),
    ("revoke", "revoke.recorded"),
    ("extension-approve", "extension.decided"),
    ("break-glass-deny", "breakglass.denied"),
    ("issue", "notify.posted"),
    ("close", "close.intent_recorded"),
    ("close", "close.tree_revoked"),
}
CASES = [
    pytest.param("sqlite", flow, point, id=f"sqlite-{flow}-{point}")
    for flow, points in POINTS.items()
    for point in points
] + [
    pytest.param(
        "postgresql", flow, point, id=f"postgresql-{flow}-{point}", marks=pytest.mark.postgres
    )
    for flow, points in POINTS.items()
    for point in points
    if (flow, point) in ON_POSTGRESQL
]


@pytest.mark.parametrize(("database", "flow", "point"), CASES)
def test_killed_at_the_step_then_restarted(
    request: pytest.FixtureRequest, database: str, flow: str, point: str
) -> None:
    fleet: Fleet = request.getfixturevalue(f"{database}_fleet")
    ready(fleet)
    FLOWS[flow](fleet, point)
