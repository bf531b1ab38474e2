"""Every message and view the bot sends, drawn by its own renderers from sample data.

`scenes` is the list, grouped by who reads each one (the requester, approvers, the commander,
the incident channel, the operators' and announce channels); `tests/unit/slack/test_messages.py`
draws it with extreme inputs and checks each against Slack's limits, and `markdown` writes
docs/messages.md: each message as it reads (`tests.tools.readable`), its notification text,
and a link that opens it in Slack's Block Kit Builder:

    .venv/bin/python -m tests.tools.gallery > docs/messages.md
"""

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bot.domain.access import (
    BREAK_GLASS_DENIED,
    CLOSE_REASON,
    AccessRequest,
    Decision,
    RequestState,
    Verdict,
)
from bot.domain.extension import Extension, ExtensionState
from bot.domain.incident import Incident, IncidentStatus, Severity
from bot.domain.ports import IssuedCredential
from bot.domain.rules import ResourceRule
from bot.domain.summary import DecisionLine, IncidentSummary, RequestLine
from bot.slack.blocks import access, extension, home, incident, messages, tasks
from tests.tools.readable import read_message, read_text, read_view
from tests.unit.example_policy import example_policy

REGENERATE = ".venv/bin/python -m tests.tools.gallery > docs/messages.md"
BUILDER = "https://app.slack.com/block-kit-builder/#"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REQUESTER = "U0ONCALL2"
COMMANDER = "U0ONCALL1"
LEAD = "U0LEAD1"
CHANNEL = "C0INCIDENT"
# Who the sample ids are, as Slack shows them in a workspace.
NAMES = {
    REQUESTER: "grace",
    COMMANDER: "ada",
    LEAD: "linus",
    "U0LEAD2": "barbara",
    "C0INCIDENT": "inc-20261123-ranker-p99",
}


@dataclass(frozen=True)
class Sample:
    """What the messages are drawn from: ordinary by default, extreme in the property test."""

    resource: str = "inference-logs-ro"
    glass_resource: str = "serving-cluster-exec"  # one that allows break-glass
    description: str = "Read-only, PII-masked view of model inference logs"
    title: str = "Ranker p99 over 2 s"
    reason: str = "checking p99 spikes"
    approvers: tuple[str, ...] = ("U0LEAD1", "U0LEAD2")
    group_label: str = "@ml-leads"


@dataclass(frozen=True)
class Shown:
    """One message or view: a title, and what the bot sends."""

    title: str
    surface: str  # "message" (text and blocks), "reply" (text only), "modal", "home"
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    view: dict[str, Any] = field(default_factory=dict)


def _rule(sample: Sample) -> ResourceRule:
    base = example_policy().resource("inference-logs-ro")
    return replace(base, name=sample.resource, description=sample.description)


def _glass_rule(sample: Sample) -> ResourceRule:
    base = example_policy().resource("serving-cluster-exec")
    return replace(base, name=sample.glass_resource, description=sample.description)


def _request(sample: Sample, **changes: Any) -> AccessRequest:
    request = AccessRequest(
        id="R-7K3QF2AB",
        incident_id="INC-20261123-PFBHI4MM",
        resource=sample.resource,
        requester_id=REQUESTER,
        reason=sample.reason,
        duration=timedelta(hours=1),
        requested_at=T0,
        approvals_required=2,
        eligible_approvers=frozenset(sample.approvers),
        state_changed_at=T0,
    )
    for key, value in changes.items():
        setattr(request, key, value)
    return request


def _approve(approver: str) -> Decision:
    return Decision("R-7K3QF2AB", approver, Verdict.APPROVE, T0 + timedelta(minutes=2))


def _deny(approver: str, reason: str) -> Decision:
    return Decision("R-7K3QF2AB", approver, Verdict.DENY, T0 + timedelta(minutes=3), reason)


def _ended(sample: Sample, ending: RequestState, reason: str, by: str | None, **more: Any) -> Any:
    ended = {"state": ending, "ended_at": T0 + timedelta(minutes=65), "end_reason": reason}
    return _request(sample, **{**more, **ended, "ended_by": by})


def _active(sample: Sample, **more: Any) -> dict[str, Any]:
    first, second = sample.approvers[0], sample.approvers[-1]
    return {
        "state": RequestState.ACTIVE,
        "decisions": [_approve(first), _approve(second)],
        "activated_at": T0 + timedelta(minutes=5),
        "ends_at": T0 + timedelta(minutes=65),
        **more,
    }


def _extension(sample: Sample, state: ExtensionState, **more: Any) -> Extension:
    return Extension(
        id="X-2Q5MNB4R",
        request_id="R-7K3QF2AB",
        requested_by=REQUESTER,
        duration=timedelta(minutes=30),
        requested_at=T0 + timedelta(minutes=50),
        approvals_required=1,
        eligible_approvers=frozenset(sample.approvers),
        reason=sample.reason,
        state=state,
        **more,
    )


def _incident(sample: Sample, **more: Any) -> Incident:
    return Incident(
        id="INC-20261123-PFBHI4MM",
        title=sample.title,
        severity=Severity.SEV2,
        commander_id=COMMANDER,
        opened_by=COMMANDER,
        opened_at=T0 - timedelta(minutes=20),
        channel_id="C0INCIDENT",
        channel_name="inc-20261123-ranker-p99",
        **more,
    )


def _summary(sample: Sample) -> IncidentSummary:
    line = RequestLine(
        request_id="R-7K3QF2AB",
        resource=sample.resource,
        requester=REQUESTER,
        reason=sample.reason,
        duration="1h",
        requested_at=T0,
        decisions=[DecisionLine(LEAD, "approve", T0 + timedelta(minutes=2), None)],
        issued_at=T0 + timedelta(minutes=5),
        ended_at=T0 + timedelta(minutes=40),
        outcome="revoked",
        end_reason=CLOSE_REASON,
        revocation_confirmed_at=T0 + timedelta(minutes=40),
    )
    glass = replace(
        line,
        request_id="R-GLASS234",
        resource=sample.glass_resource,
        break_glass=True,
        decisions=[],
    )
    return IncidentSummary(
        incident_id="INC-20261123-PFBHI4MM",
        title=sample.title,
        severity="sev2",
        commander=COMMANDER,
        opened_by=COMMANDER,
        opened_at=T0 - timedelta(minutes=20),
        closed_by=COMMANDER,
        closed_at=T0 + timedelta(minutes=40),
        resolution="rolled back the ranker",
        requests=[line, glass],
        event_count=14,
        head_seq=14,
        head_hash="9f2c" * 16,
    )


def _card(title: str, request: AccessRequest, rule: ResourceRule, **kw: Any) -> Shown:
    text, blocks = access.approval_card(request, rule, timeout=timedelta(minutes=30), **kw)
    return Shown(title, "message", text, blocks)


def _reply(title: str, text: str) -> Shown:
    return Shown(title, "reply", text)


def _request_cards(sample: Sample) -> list[Shown]:
    rule, first = _rule(sample), sample.approvers[0]
    labelled = _request(sample, approver_labels={sample.group_label: frozenset(sample.approvers)})
    approved = {
        "state": RequestState.APPROVED,
        "decisions": [_approve(first), _approve(sample.approvers[-1])],
    }
    applied = _extension(
        sample,
        ExtensionState.APPLIED,
        decisions=[_approve(first)],
        new_ends_at=T0 + timedelta(hours=2),
    )
    return [
        _card("Request card: waiting for approvers", _request(sample), rule),
        _card("Request card: approvers from a Slack user group", labelled, rule),
        _card(
            "Request card: approved automatically (on call)",
            _request(
                sample, state=RequestState.APPROVED, auto_approved_because="on call in ml-oncall"
            ),
            rule,
        ),
        _card("Request card: approved, issuing", _request(sample, **approved), rule),
        _card(
            "Request card: approved, Vault unavailable",
            _request(sample, **approved),
            rule,
            retrying=True,
        ),
        _card("Request card: access active", _request(sample, **_active(sample)), rule),
        _card(
            "Request card: an extension waits for approval",
            _request(
                sample, **_active(sample, extensions=[_extension(sample, ExtensionState.PENDING)])
            ),
            rule,
        ),
        _card(
            "Request card: extended",
            _request(sample, **_active(sample, extensions=[applied])),
            rule,
        ),
        _card(
            "Request card: denied",
            _ended(
                sample,
                RequestState.DENIED,
                "denied: not for this incident",
                first,
                decisions=[_deny(first, "not for this incident")],
            ),
            rule,
        ),
        _card(
            "Request card: cancelled by the requester",
            _ended(sample, RequestState.CANCELLED, "cancelled by requester", REQUESTER),
            rule,
        ),
        _card(
            "Request card: timed out",
            _ended(sample, RequestState.TIMED_OUT, "nobody decided in time", None),
            rule,
        ),
        _card(
            "Request card: Vault refused to issue",
            _ended(sample, RequestState.FAILED, "issue failed: permission denied", None),
            rule,
        ),
        _card(
            "Request card: access expired",
            _ended(
                sample,
                RequestState.EXPIRED,
                "expired",
                None,
                **_active(sample, state=RequestState.EXPIRED),
            ),
            rule,
        ),
        _card(
            "Request card: access revoked",
            _ended(
                sample,
                RequestState.REVOKED,
                f"revoked by {first}",
                first,
                **_active(sample, state=RequestState.REVOKED),
            ),
            rule,
        ),
        _card(
            "Request card: access ended by the incident's close",
            _ended(
                sample,
                RequestState.REVOKED,
                CLOSE_REASON,
                COMMANDER,
                **_active(sample, state=RequestState.REVOKED),
            ),
            rule,
        ),
        _card(
            "Request card: request cancelled by the incident's close",
            _ended(sample, RequestState.CANCELLED, CLOSE_REASON, COMMANDER),
            rule,
        ),
        _card(
            "Request card: credential never delivered",
            _ended(
                sample,
                RequestState.REVOKED,
                "the credential was never delivered",
                None,
                **_active(sample, state=RequestState.REVOKED),
            ),
            rule,
        ),
    ]


def _break_glass_cards(sample: Sample) -> list[Shown]:
    rule, first = _glass_rule(sample), sample.approvers[0]
    glass = {
        "break_glass": True,
        "resource": sample.glass_resource,
        "duration": timedelta(minutes=15),
        "approvals_required": 1,
    }
    denied = f"{BREAK_GLASS_DENIED} by {first}: page me next time"
    return [
        _card(
            "Break-glass card: issuing, review pending",
            _request(sample, state=RequestState.APPROVED, **glass),
            rule,
        ),
        _card(
            "Break-glass card: active, review pending",
            _request(sample, **_active(sample, decisions=[]), **glass),
            rule,
        ),
        _card(
            "Break-glass card: confirmed on review",
            _request(
                sample,
                **_active(sample, decisions=[_approve(first)]),
                reviewed_at=T0 + timedelta(minutes=9),
                **glass,
            ),
            rule,
        ),
        _card(
            "Break-glass card: denied on review",
            _ended(
                sample,
                RequestState.REVOKED,
                denied,
                first,
                **_active(
                    sample,
                    state=RequestState.REVOKED,
                    decisions=[_deny(first, "page me next time")],
                ),
                **glass,
            ),
            rule,
        ),
    ]


def _ending_requests(sample: Sample) -> list[tuple[str, AccessRequest]]:
    """Each way a request or its access ends that its requester is told of."""
    first = sample.approvers[0]
    return [
        (
            "denied",
            _ended(
                sample,
                RequestState.DENIED,
                "denied: not now",
                first,
                decisions=[_deny(first, "not now")],
            ),
        ),
        ("timed out", _ended(sample, RequestState.TIMED_OUT, "nobody decided in time", None)),
        (
            "Vault refused",
            _ended(sample, RequestState.FAILED, "issue failed: permission denied", None),
        ),
        ("expired", _ended(sample, RequestState.EXPIRED, "expired", None)),
        ("revoked", _ended(sample, RequestState.REVOKED, f"revoked by {first}", first)),
        ("never delivered", _ended(sample, RequestState.REVOKED, "never delivered", None)),
        (
            "break-glass denied on review",
            _ended(
                sample,
                RequestState.REVOKED,
                f"{BREAK_GLASS_DENIED} by {first}: no",
                first,
                break_glass=True,
                resource=sample.glass_resource,
                decisions=[_deny(first, "page me next time")],
            ),
        ),
    ]


def _extension_outcomes(sample: Sample) -> list[tuple[str, Extension]]:
    first = sample.approvers[0]
    return [
        (
            "applied",
            _extension(
                sample,
                ExtensionState.APPLIED,
                decisions=[_approve(first)],
                new_ends_at=T0 + timedelta(hours=2),
            ),
        ),
        (
            "approved, Vault unavailable",
            _extension(sample, ExtensionState.APPROVED, decisions=[_approve(first)]),
        ),
        (
            "denied",
            _extension(
                sample,
                ExtensionState.DENIED,
                decisions=[_deny(first, "wrap it up")],
                note="wrap it up",
            ),
        ),
        ("Vault refused", _extension(sample, ExtensionState.FAILED, note="permission denied")),
    ]


def _confirmed_glass(sample: Sample) -> AccessRequest:
    return _request(
        sample,
        **_active(sample, decisions=[_approve(sample.approvers[0])]),
        reviewed_at=T0 + timedelta(minutes=9),
        break_glass=True,
        resource=sample.glass_resource,
        duration=timedelta(minutes=15),
        approvals_required=1,
    )


def _message(title: str, drawn: tuple[str, list[dict[str, Any]]]) -> Shown:
    return Shown(title, "message", drawn[0], drawn[1])


def _requester(sample: Sample) -> list[Shown]:
    """What the requester reads, privately, from the form to the end of their access."""
    rule = _rule(sample)
    wrapped = IssuedCredential(
        lease_id=None,
        token_accessor="accessor",
        expires_at=T0 + timedelta(hours=1),
        wrapping_token="hvs.CAES-sample-wrapping-token",
        wrapping_expires_at=T0 + timedelta(minutes=5),
    )
    once = IssuedCredential(
        lease_id="database/creds/x/abc",
        token_accessor=None,
        expires_at=T0 + timedelta(hours=1),
        secret={"username": "v-gatehouse-x", "password": "sample-password"},
    )
    pending, active = _request(sample), _request(sample, **_active(sample))
    timeout = timedelta(minutes=30)
    expired = _ended(sample, RequestState.EXPIRED, "expired", None, **_active(sample))
    shown = [
        Shown(
            "Form: request access",
            "modal",
            view=access.request_modal([rule, _glass_rule(sample)], "C0INCIDENT"),
        ),
        _reply("/request-access usage", access.REQUEST_USAGE),
        _message(
            "The credential, wrapped",
            access.delivery(
                wrapped,
                rule,
                request_id="R-7K3QF2AB",
                vault_addr="https://vault.example:8200",
                now=T0,
            ),
        ),
        _message(
            "The credential, shown once (break-glass: no Extend)",
            access.delivery(
                once, rule, request_id="R-7K3QF2AB", vault_addr=None, now=T0, extendable=False
            ),
        ),
        _message(
            "Access ends soon",
            tasks.expiry_warning(active, timedelta(minutes=47), open_=True),
        ),
        _message(
            "Access ends soon, at its maximum",
            tasks.expiry_warning(active, timedelta(0), open_=True),
        ),
        _message(
            "Access ends soon, once it ended (the credential message says how)",
            tasks.expiry_warning(expired, timedelta(0), open_=False),
        ),
        Shown(
            "Form: extend access",
            "modal",
            view=extension.extend_modal(active, timedelta(minutes=47), "C0INCIDENT"),
        ),
    ]
    shown += [
        _message(f"Extension {what}", tasks.requester_extension_outcome(active, ext))
        for what, ext in _extension_outcomes(sample)
    ]
    shown.append(
        _message(
            "Break-glass confirmed on review",
            tasks.requester_review_outcome(_confirmed_glass(sample)),
        )
    )
    shown += [
        _message(f"Told how it ended: {what}", tasks.requester_outcome(r, timeout=timeout))
        for what, r in _ending_requests(sample)
    ]
    shown += [
        _message(
            "The credential once access ended", tasks.credential_ended(expired, timeout=timeout)
        ),
        _reply("/access", access.my_access([pending], [active], [pending], T0)),
        _reply("/access usage", access.ACCESS_USAGE),
        Shown(
            "App Home: your access",
            "home",
            view=home.home_view(
                to_decide=[], active=[active], incidents=[_incident(sample)], now=T0
            ),
        ),
    ]
    return shown


def _approvers(sample: Sample) -> list[Shown]:
    """What an approver reads: their tasks, reviews and extension tasks, each redrawn once
    decided; the deny form; App Home."""
    rule, glass_rule, first = _rule(sample), _glass_rule(sample), sample.approvers[0]
    timeout = timedelta(minutes=30)
    pending, active = _request(sample), _request(sample, **_active(sample))
    half = _request(sample, decisions=[_approve(LEAD)])
    denied = _ended(
        sample,
        RequestState.DENIED,
        "denied: use the replica",
        "U0LEAD2",
        decisions=[_deny("U0LEAD2", "use the replica")],
    )
    glass = _request(
        sample,
        **_active(sample, decisions=[]),
        break_glass=True,
        resource=sample.glass_resource,
        duration=timedelta(minutes=15),
        approvals_required=1,
    )
    asked = _extension(sample, ExtensionState.PENDING)
    extending = _request(sample, **_active(sample, extensions=[asked]))
    applied = _extension(
        sample,
        ExtensionState.APPLIED,
        decisions=[_approve(first)],
        new_ends_at=T0 + timedelta(hours=2),
    )
    extended = _request(sample, **_active(sample, extensions=[applied]))
    task = tasks.approver_task
    return [
        _message("A task", task(pending, rule, LEAD, timeout=timeout, channel_id=CHANNEL)),
        _message(
            "The one reminder",
            task(pending, rule, LEAD, timeout=timeout, reminder=True, channel_id=CHANNEL),
        ),
        _message(
            "The one reminder, decided since (one line under the task)",
            task(denied, rule, LEAD, timeout=timeout, reminder=True, channel_id=CHANNEL),
        ),
        _message(
            "A task, approved, waiting for more",
            task(half, rule, LEAD, timeout=timeout, channel_id=CHANNEL),
        ),
        _message(
            "A task, decided: access active",
            task(active, rule, LEAD, timeout=timeout, channel_id=CHANNEL),
        ),
        _message(
            "A task, decided: denied by another",
            task(denied, rule, LEAD, timeout=timeout, channel_id=CHANNEL),
        ),
        Shown(
            "Form: why deny",
            "modal",
            view=access.deny_reason_modal("R-7K3QF2AB", request=pending),
        ),
        _message(
            "A break-glass review", tasks.review_task(glass, glass_rule, LEAD, channel_id=CHANNEL)
        ),
        _message(
            "A break-glass review, confirmed",
            tasks.review_task(_confirmed_glass(sample), glass_rule, "U0LEAD2", channel_id=CHANNEL),
        ),
        _message(
            "An extension task",
            tasks.extension_task(extending, asked, rule, LEAD, channel_id=CHANNEL),
        ),
        _message(
            "An extension task, decided",
            tasks.extension_task(extended, applied, rule, "U0LEAD2", channel_id=CHANNEL),
        ),
        Shown(
            "App Home: waiting on you",
            "home",
            view=home.home_view(
                to_decide=[
                    pending,
                    _request(
                        sample,
                        id="R-GLASS234",
                        state=RequestState.APPROVED,
                        break_glass=True,
                        resource=sample.glass_resource,
                    ),
                    extending,
                ],
                active=[],
                incidents=[_incident(sample)],
                now=T0,
            ),
        ),
    ]


def _commander(sample: Sample) -> list[Shown]:
    """What the incident's commander reads, from opening the incident to its summary."""
    now = _incident(sample)
    summary_text, summary_blocks = incident.summary_blocks(
        _summary(sample), archive_in=timedelta(hours=24)
    )
    closed = _incident(sample, status=IncidentStatus.CLOSED, closed_at=T0 + timedelta(minutes=40))
    return [
        Shown("Form: open an incident", "modal", view=incident.open_incident_modal()),
        _reply("Opening (the command's answer)", incident.opening(sample.title)),
        _reply("Opened, from another channel", incident.opened_elsewhere(now)),
        _reply("Its channel made late (DM)", incident.channel_made_late(now)),
        _message("The pinned card", incident.incident_card(now)),
        _reply("The channel topic", incident.topic(now)),
        Shown("Form: hand off (card button)", "modal", view=incident.hand_off_modal(now)),
        _reply("Command handed off", incident.handed_off(now, LEAD, COMMANDER)),
        _reply("/incident status", incident.status_text(closed, 1, 2)),
        _reply("/incident usage", incident.INCIDENT_USAGE),
        Shown("Form: close (card button)", "modal", view=incident.close_modal(now)),
        Shown("The close summary", "message", summary_text, summary_blocks),
    ]


def _channel(sample: Sample) -> list[Shown]:
    """What everyone in the incident channel reads: the cards and their threads."""
    timeout = timedelta(minutes=30)
    told = access.outcome_for_channel
    pending, active = _request(sample), _request(sample, **_active(sample))
    first = sample.approvers[0]
    shown = _request_cards(sample) + _break_glass_cards(sample)
    shown += [
        _reply("Thread: access ready", told(active, timeout=timeout)),
        _reply(
            "Thread: access ready, shown once (delivery: ephemeral)",
            told(active, timeout=timeout, in_dm=False),
        ),
        _reply(
            "Thread: approved, Vault unavailable",
            told(
                _request(sample, state=RequestState.APPROVED, decisions=[_approve(first)]),
                retrying=True,
            ),
        ),
    ]
    ends = [
        *_ending_requests(sample),
        ("cancelled", _ended(sample, RequestState.CANCELLED, "cancelled by requester", REQUESTER)),
        (
            "revoked by the requester",
            _ended(sample, RequestState.REVOKED, f"revoked by {REQUESTER}", REQUESTER),
        ),
    ]
    shown += [_reply(f"Thread: {what}", told(r, timeout=timeout)) for what, r in ends]
    glass = _confirmed_glass(sample)
    shown += [
        _reply(
            "Thread: break-glass confirmed on review",
            messages.review_outcome(glass, messages.for_channel(glass)),
        ),
        _reply(
            "Thread: approved automatically",
            access.auto_approved(
                _request(
                    sample,
                    state=RequestState.APPROVED,
                    auto_approved_because="on call in ml-oncall",
                )
            ),
        ),
        _reply("Thread: reminder", access.reminder(pending, frozenset(sample.approvers))),
        _reply("Thread: lookups that failed", access.lookup_note(oncall=True, others=True)),
        _reply(
            "Thread: an extension is asked",
            messages.extension_asked(active, _extension(sample, ExtensionState.PENDING)),
        ),
        _reply(
            "Thread: an extension is asked (notify: channel-mention)",
            messages.extension_asked(
                active, _extension(sample, ExtensionState.PENDING), mention_approvers=True
            ),
        ),
    ]
    shown += [
        _reply(
            f"Thread: extension {what}",
            messages.extension_outcome(active, ext, messages.for_channel(active)),
        )
        for what, ext in _extension_outcomes(sample)
    ]
    return shown


def _elsewhere(sample: Sample) -> list[Shown]:
    """The operators' channel and the announce channel."""
    now = _incident(sample)
    closed = _incident(sample, status=IncidentStatus.CLOSED, closed_at=T0 + timedelta(minutes=40))
    return [
        _reply(
            "Operators' channel: the lookups that failed, in detail",
            access.ops_lookup_details(
                _request(sample), "C0INCIDENT", (f"{sample.group_label} (Slack did not answer)",)
            ),
        ),
        _reply("Announce channel: an incident opened", incident.announce_opened(now)),
        _reply("Announce channel: an incident closed", incident.announce_closed(closed)),
    ]


SECTIONS: list[tuple[str, str, Callable[[Sample], list[Shown]]]] = [
    ("The requester", "privately: DMs, forms, command answers, App Home", _requester),
    ("Approvers", "privately: tasks, reviews, the deny form, App Home", _approvers),
    ("The commander", "the incident: its forms, card, topic and summary", _commander),
    ("The incident channel", "everyone there: cards and their threads", _channel),
    ("Other channels", "the operators' and the announce channel", _elsewhere),
]


def scenes(sample: Sample) -> list[Shown]:
    """Every message and view, drawn from `sample`."""
    return [shown for _, _, section in SECTIONS for shown in section(sample)]


def builder_link(shown: Shown) -> str:
    """A link that opens the message or view in Block Kit Builder: the payload, URL-encoded,
    after `#` (a message as `{"blocks": […]}`, a view as itself)."""
    if shown.surface in ("modal", "home"):
        payload: dict[str, Any] = shown.view
    elif shown.blocks:
        payload = {"blocks": shown.blocks}
    else:
        payload = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": shown.text}}]}
    return BUILDER + quote(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), safe="")


def reads(shown: Shown) -> str:
    """The message or view as it reads (`tests.tools.readable`), people by name."""
    if shown.surface in ("modal", "home"):
        return read_view(shown.view, NAMES)
    if shown.blocks:
        return read_message(shown.text, shown.blocks, NAMES)
    return read_text(shown.text, NAMES)


def markdown() -> str:
    """docs/messages.md: by reader, each message as it reads, its notification text, and a
    Builder link."""
    out = [
        "# Messages",
        "",
        "Every message and view Gatehouse sends, by who reads it, in the order a scenario",
        "shows them, drawn by its own renderers from sample data (`tests/tools/gallery.py`; a",
        "test fails when this file is stale: regenerate it with",
        f"`{REGENERATE}`, or `make docs`).",
        "",
        "Each is shown as it reads (`tests/tools/readable.py`): blocks in order, people and",
        "channels by name, times as their UTC fallback (Slack shows each reader their own",
        "zone), context lines after `›`, buttons as `[Button]`, a select as `[a | b ▾]`.",
        "Below it: the notification text (what a phone shows, and what a screen reader",
        "starts with) and a link that opens it in Slack's Block Kit Builder.",
        "",
        "The wording lives in `bot/slack/blocks/messages.py`; every text is cut to Slack's",
        "limits by `clip` in `bot/slack/blocks/text.py`.",
        "",
    ]
    sample = Sample()
    for heading, who, section in SECTIONS:
        out += [f"## {heading}", "", f"Read {who}.", ""]
        for shown in section(sample):
            # Indented, not fenced: a message may hold a fence of its own (the credential).
            shown_as = [f"    {line}".rstrip() for line in reads(shown).splitlines()]
            out += [f"### {shown.title}", "", "Reads:", "", *shown_as, ""]
            if shown.text and shown.blocks:
                out += [
                    "Notification text:",
                    "",
                    *("    " + line for line in read_text(shown.text, NAMES).splitlines()),
                    "",
                ]
            out += [f"[Open in Block Kit Builder]({builder_link(shown)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
