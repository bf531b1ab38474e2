"""Every message and view the bot sends, drawn by its own renderers from sample data.

`scenes` is the list (the request card in each state, every thread reply, the private
messages, the incident's messages, the forms and App Home); `tests/unit/slack/test_messages.py`
draws it with extreme inputs and checks each against Slack's limits, and `markdown` writes
docs/messages.md with a link that opens each one in Slack's Block Kit Builder:

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
from bot.slack.blocks import access, extension, home, incident, tasks
from tests.unit.example_policy import example_policy

REGENERATE = ".venv/bin/python -m tests.tools.gallery > docs/messages.md"
BUILDER = "https://app.slack.com/block-kit-builder/#"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REQUESTER = "U0ONCALL2"
COMMANDER = "U0ONCALL1"
LEAD = "U0LEAD1"


@dataclass(frozen=True)
class Sample:
    """What the messages are drawn from: ordinary by default, extreme in the property test."""

    resource: str = "inference-logs-ro"
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
    return replace(base, name=sample.resource, description=sample.description)


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
    glass = replace(line, request_id="R-GLASS234", break_glass=True, decisions=[])
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
    glass = {"break_glass": True, "duration": timedelta(minutes=15), "approvals_required": 1}
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


def _replies(sample: Sample) -> list[Shown]:
    first = sample.approvers[0]
    said: list[Shown] = []
    told = access.outcome_for_requester
    timeout = timedelta(minutes=30)
    ended = [
        ("ready", _request(sample, **_active(sample))),
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
        ("cancelled", _ended(sample, RequestState.CANCELLED, "cancelled by requester", REQUESTER)),
        ("timed out", _ended(sample, RequestState.TIMED_OUT, "nobody decided in time", None)),
        (
            "Vault refused",
            _ended(sample, RequestState.FAILED, "issue failed: permission denied", None),
        ),
        ("expired", _ended(sample, RequestState.EXPIRED, "expired", None)),
        ("revoked", _ended(sample, RequestState.REVOKED, f"revoked by {first}", first)),
        (
            "revoked by the requester",
            _ended(sample, RequestState.REVOKED, f"revoked by {REQUESTER}", REQUESTER),
        ),
        ("never delivered", _ended(sample, RequestState.REVOKED, "never delivered", None)),
        (
            "break-glass denied on review",
            _ended(
                sample,
                RequestState.REVOKED,
                f"{BREAK_GLASS_DENIED} by {first}: no",
                first,
                break_glass=True,
                decisions=[_deny(first, "page me next time")],
            ),
        ),
    ]
    said += [
        _reply(f"Thread reply to the requester: {what}", told(r, timeout=timeout))
        for what, r in ended
    ]
    approved = _request(sample, state=RequestState.APPROVED, decisions=[_approve(first)])
    said.append(
        _reply("Thread reply to the requester: Vault unavailable", told(approved, retrying=True))
    )
    auto = _request(
        sample, state=RequestState.APPROVED, auto_approved_because="on call in ml-oncall"
    )
    said.append(
        _reply("Thread reply to approvers: approved automatically", access.auto_approved(auto))
    )
    pending = _request(sample)
    said.append(
        _reply(
            "Thread reply to approvers: reminder",
            access.reminder(pending, frozenset(sample.approvers)),
        )
    )
    said.append(
        _reply(
            "Thread note: lookups that failed",
            access.lookup_note(oncall=True, others=True),
        )
    )
    said.append(
        _reply(
            "Operators' channel: the lookups that failed, in detail",
            access.ops_lookup_details(
                pending, "C0INCIDENT", (f"{sample.group_label} (Slack did not answer)",)
            ),
        )
    )
    active = _request(sample, **_active(sample))
    asked = _extension(sample, ExtensionState.PENDING)
    said.append(
        _reply(
            "Thread reply to approvers: an extension is asked",
            extension.extension_asked(active, asked),
        )
    )
    outcomes = [
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
    said += [
        _reply(
            f"Thread reply to the requester: extension {what}",
            extension.extension_outcome(active, ext),
        )
        for what, ext in outcomes
    ]
    return said


def _private(sample: Sample) -> list[Shown]:
    rule = _rule(sample)
    wrapped = IssuedCredential(
        lease_id=None,
        token_accessor="accessor",
        expires_at=T0 + timedelta(hours=1),
        wrapping_token="hvs.CAES-sample-wrapping-token",
        wrapping_expires_at=T0 + timedelta(minutes=5),
    )
    shown = IssuedCredential(
        lease_id="database/creds/x/abc",
        token_accessor=None,
        expires_at=T0 + timedelta(hours=1),
        secret={"username": "v-gatehouse-x", "password": "sample-password"},
    )
    pending, active = _request(sample), _request(sample, **_active(sample))
    text, blocks = access.delivery(
        wrapped, rule, request_id="R-7K3QF2AB", vault_addr="https://vault.example:8200", now=T0
    )
    secret_text, secret_blocks = access.delivery(
        shown, rule, request_id="R-7K3QF2AB", vault_addr=None, now=T0, extendable=False
    )
    timeout = timedelta(minutes=30)
    task_text, task = tasks.approver_task(
        pending, rule, LEAD, channel_id="C0INCIDENT", timeout=timeout
    )
    nudge_text, nudge = tasks.approver_task(
        pending, rule, LEAD, channel_id="C0INCIDENT", timeout=timeout, reminder=True
    )
    done_text, done = tasks.approver_task(
        active, rule, LEAD, channel_id="C0INCIDENT", timeout=timeout
    )
    warn_text, warn = tasks.expiry_warning(active, timedelta(minutes=47), open_=True)
    full_text, full = tasks.expiry_warning(active, timedelta(0), open_=True)
    expired = _ended(sample, RequestState.EXPIRED, "expired", None, **_active(sample))
    ended_text, ended = tasks.credential_ended(expired, timeout=timeout)
    denied = _request(
        sample,
        state=RequestState.DENIED,
        decisions=[_deny(LEAD, "use the replica")],
        ended_at=T0,
        end_reason="denied",
        ended_by=LEAD,
    )
    told_text, told = tasks.requester_outcome(denied, timeout=timeout)
    return [
        Shown("Private: the credential, wrapped", "message", text, blocks),
        Shown("Private: the credential, shown once", "message", secret_text, secret_blocks),
        Shown("Private: the credential once access ended", "message", ended_text, ended),
        Shown("Private: an approver's task", "message", task_text, task),
        Shown("Private: an approver's reminder", "message", nudge_text, nudge),
        Shown("Private: an approver's task, decided", "message", done_text, done),
        Shown("Private: access ends soon", "message", warn_text, warn),
        Shown("Private: access ends soon, at its maximum", "message", full_text, full),
        Shown("Private: the requester told of a deny", "message", told_text, told),
        _reply("Private: /access", access.my_access([pending], [active], [pending], T0)),
        _reply("Private: /request-access usage", access.REQUEST_USAGE),
        _reply("Private: /access usage", access.ACCESS_USAGE),
    ]


def _incidents(sample: Sample) -> list[Shown]:
    now = _incident(sample)
    text, blocks = incident.incident_card(now)
    summary_text, summary_blocks = incident.summary_blocks(
        _summary(sample), archive_in=timedelta(hours=24)
    )
    closed = _incident(sample, status=IncidentStatus.CLOSED, closed_at=T0 + timedelta(minutes=40))
    return [
        Shown("Incident: the pinned card", "message", text, blocks),
        _reply("Incident: the channel topic", incident.topic(now)),
        _reply("Incident: opening (the command's answer)", incident.opening(sample.title)),
        _reply("Incident: opened, from another channel", incident.opened_elsewhere(now)),
        _reply("Incident: its channel made late (DM)", incident.channel_made_late(now)),
        _reply("Incident: command handed off", incident.handed_off(now, LEAD, COMMANDER)),
        _reply("Incident: /incident status", incident.status_text(closed, 1, 2)),
        _reply("Incident: usage", incident.INCIDENT_USAGE),
        Shown("Incident: the close summary", "message", summary_text, summary_blocks),
        _reply("Announce channel: an incident opened", incident.announce_opened(now)),
        _reply("Announce channel: an incident closed", incident.announce_closed(closed)),
    ]


def _views(sample: Sample) -> list[Shown]:
    rules = [_rule(sample), _glass_rule(sample)]
    active = _request(sample, **_active(sample))
    glass = _request(sample, id="R-GLASS234", state=RequestState.APPROVED, break_glass=True)
    extending = _request(
        sample, **_active(sample, extensions=[_extension(sample, ExtensionState.PENDING)])
    )
    incident_now = _incident(sample)
    return [
        Shown("Form: request access", "modal", view=access.request_modal(rules, "C0INCIDENT")),
        Shown(
            "Form: why deny",
            "modal",
            view=access.deny_reason_modal("R-7K3QF2AB", request=_request(sample)),
        ),
        Shown(
            "Form: extend access",
            "modal",
            view=extension.extend_modal(active, timedelta(minutes=47), "C0INCIDENT"),
        ),
        Shown("Form: open an incident", "modal", view=incident.open_incident_modal()),
        Shown("Form: hand off (card button)", "modal", view=incident.hand_off_modal(incident_now)),
        Shown("Form: close (card button)", "modal", view=incident.close_modal(incident_now)),
        Shown(
            "App Home",
            "home",
            view=home.home_view(
                to_decide=[_request(sample), glass, extending],
                active=[active],
                incidents=[_incident(sample)],
                now=T0,
            ),
        ),
    ]


SECTIONS: list[tuple[str, Callable[[Sample], list[Shown]]]] = [
    ("Request cards", _request_cards),
    ("Break-glass cards", _break_glass_cards),
    ("Thread replies", _replies),
    ("Private messages", _private),
    ("Incident messages", _incidents),
    ("Forms and App Home", _views),
]


def scenes(sample: Sample) -> list[Shown]:
    """Every message and view, drawn from `sample`."""
    return [shown for _, section in SECTIONS for shown in section(sample)]


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


def markdown() -> str:
    """docs/messages.md: each message's notification text, its blocks, and a Builder link."""
    out = [
        "# Messages",
        "",
        "Every message and view Gatehouse sends, drawn by its own renderers from sample data",
        "(`tests/tools/gallery.py`; a test fails when this file is stale: regenerate it with",
        f"`{REGENERATE}`). Each opens in Slack's Block Kit Builder, so it can be seen without",
        "a workspace (a thread reply, which is text only, opens as one section). Mentions and",
        "dates show as Slack shows them only in a workspace.",
        "",
        "The wording lives in `bot/slack/blocks/messages.py`; every text is cut to Slack's",
        "limits by `clip` in `bot/slack/blocks/text.py`.",
        "",
    ]
    sample = Sample()
    for heading, section in SECTIONS:
        out += [f"## {heading}", ""]
        for shown in section(sample):
            out += [f"### {shown.title}", ""]
            if shown.text:
                out += [
                    "Notification text:",
                    "",
                    *("    " + line for line in shown.text.splitlines()),
                    "",
                ]
            out += [f"[Open in Block Kit Builder]({builder_link(shown)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
