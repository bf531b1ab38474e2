"""The close summary of a chain written before events were typed: read exactly as it always was.

The entries below are built the old way, raw `AuditEntry` with the `data` dicts the services
stored then, some without the keys later versions added; the expected report is the one the
summary made of them before it read typed events.
"""

from datetime import UTC, datetime, timedelta

from bot.domain.audit import AuditEntry, AuditEvent, next_in_chain
from bot.domain.summary import summarize_incident

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
INCIDENT = "INC-20261123-OLD1"
UNDELIVERED = "the credential was never delivered (Gatehouse stopped first); request access again"


def _old_chain() -> list[AuditEvent]:
    minute = 0

    def entry(
        action: str, actor: str | None, request_id: str | None, data: dict[str, object]
    ) -> AuditEntry:
        nonlocal minute
        minute += 1
        return AuditEntry(
            action=action,
            at=T0 + timedelta(minutes=minute),
            actor=actor,
            incident_id=INCIDENT,
            request_id=request_id,
            data=data,
        )

    ends = "2026-11-23T13:00:00.000000+00:00"
    entries = [
        # The oldest incident.opened had no `commander`: whoever opened it commanded it.
        entry("incident.opened", "U0ONCALL1", None, {"title": "Model latency", "severity": "sev2"}),
        entry(
            "incident.commander_changed",
            "U0ONCALL1",
            None,
            {"previous": "U0ONCALL1", "commander": "U0LEAD1"},
        ),
        entry("incident.note", "U0LEAD1", None, {"text": "an action this version does not know"}),
        # approved by people (no `approvals_required`, `break_glass`, `automatic` yet),
        # extended, an extension denied and one failed, then expired.
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-1",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "debug latency"},
        ),
        entry(
            "request.decided",
            "U0LEAD1",
            "R-1",
            {"verdict": "approve", "reason": None, "approvals": 1},
        ),
        entry("request.approved", None, "R-1", {"approvers": ["U0LEAD1"]}),
        entry("grant.issuing", None, "R-1", {"grant_id": "G-1", "ends_at": ends}),
        entry(
            "grant.issued",
            None,
            "R-1",
            {
                "grant_id": "G-1",
                "lease_id": "lease/1",
                "token_accessor": "acc-1",
                "wrapping_accessor": None,
                "ends_at": ends,
            },
        ),
        entry(
            "extension.requested",
            "U0ONCALL2",
            "R-1",
            {"extension_id": "X-1", "duration": "1h", "reason": "still digging"},
        ),
        entry(
            "extension.decided",
            "U0LEAD1",
            "R-1",
            {"extension_id": "X-1", "verdict": "approve", "reason": None, "approvals": 1},
        ),
        entry("extension.approved", None, "R-1", {"extension_id": "X-1", "approvers": ["U0LEAD1"]}),
        entry(
            "extension.applied",
            None,
            "R-1",
            {
                "grant_id": "G-1",
                "extension_id": "X-1",
                "previous_ends_at": ends,
                "ends_at": "2026-11-23T14:00:00.000000+00:00",
                "approvers": ["U0LEAD1"],
            },
        ),
        entry("extension.denied", "U0LEAD2", "R-1", {"extension_id": "X-2", "reason": "enough"}),
        entry(
            "extension.failed",
            None,
            "R-1",
            {
                "extension_id": "X-3",
                "error": "Vault would not renew the credential past its current end",
            },
        ),
        entry("request.expired", None, "R-1", {"reason": "expired"}),
        entry("grant.revocation_requested", None, "R-1", {"grant_id": "G-1", "reason": "expired"}),
        entry(
            "grant.revocation_failed",
            None,
            "R-1",
            {"grant_id": "G-1", "error": "vault down", "attempts": 1},
        ),
        entry(
            "grant.revoked",
            None,
            "R-1",
            {"grant_id": "G-1", "confirmed_at": "2026-11-23T14:00:05.000000+00:00"},
        ),
        # break-glass, denied after the fact while active.
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-2",
            {
                "resource": "prod-db-admin",
                "duration": "1h",
                "reason": "outage",
                "approvals_required": 1,
                "approvers": ["U0LEAD1"],
                "break_glass": True,
            },
        ),
        entry(
            "request.break_glass_used",
            "U0ONCALL2",
            "R-2",
            {"reviewers": ["U0LEAD1"], "reviews_required": 1},
        ),
        entry("grant.issuing", None, "R-2", {"grant_id": "G-2", "ends_at": ends}),
        entry(
            "grant.issued",
            None,
            "R-2",
            {
                "grant_id": "G-2",
                "lease_id": None,
                "token_accessor": "acc-2",
                "wrapping_accessor": "wrap-2",
                "ends_at": ends,
            },
        ),
        entry(
            "request.decided",
            "U0LEAD1",
            "R-2",
            {
                "verdict": "deny",
                "reason": "not an emergency",
                "approvals": 0,
                "approvals_required": 1,
            },
        ),
        entry(
            "request.revoked",
            "U0LEAD1",
            "R-2",
            {"reason": "break-glass denied by U0LEAD1: not an emergency"},
        ),
        # break-glass confirmed by its reviewer, then revoked by its requester.
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-3",
            {
                "resource": "prod-db-admin",
                "duration": "1h",
                "reason": "outage",
                "approvals_required": 1,
                "approvers": ["U0LEAD1"],
                "break_glass": True,
            },
        ),
        entry(
            "request.break_glass_used",
            "U0ONCALL2",
            "R-3",
            {"reviewers": ["U0LEAD1"], "reviews_required": 1},
        ),
        entry("grant.issued", None, "R-3", {"grant_id": "G-3", "ends_at": ends}),
        entry(
            "request.decided",
            "U0LEAD1",
            "R-3",
            {"verdict": "approve", "reason": None, "approvals": 1, "approvals_required": 1},
        ),
        entry("request.break_glass_reviewed", None, "R-3", {"approvers": ["U0LEAD1"]}),
        entry("request.revoked", "U0ONCALL2", "R-3", {"reason": "revoked by U0ONCALL2"}),
        # a failed group lookup, auto-approved by on-call, refused by Vault.
        entry(
            "request.filed",
            "U0ONCALL1",
            "R-4",
            {
                "resource": "inference-logs",
                "duration": "2h",
                "reason": "on call",
                "approvals_required": 1,
                "approvers": [],
                "break_glass": False,
            },
        ),
        entry(
            "request.group_lookup_failed",
            None,
            "R-4",
            {"error": "sre-leads (Slack @sre-leads) could not be looked up: ratelimited"},
        ),
        entry(
            "request.auto_approved",
            None,
            "R-4",
            {
                "group": "primary",
                "source": "pagerduty",
                "ref": "PEP1",
                "because": "on call in primary (escalation policy PEP1 level 1)",
                "pagerduty_user_id": "PU1",
                "escalation_policy_id": "PEP1",
                "escalation_level": 1,
                "schedule_id": None,
                "start": None,
                "end": None,
            },
        ),
        entry("request.approved", None, "R-4", {"approvers": [], "automatic": True}),
        entry("grant.issuing", None, "R-4", {"grant_id": "G-4", "ends_at": ends}),
        entry(
            "grant.issue_failed",
            None,
            "R-4",
            {"grant_id": "G-4", "error": "permission denied", "retrying": False},
        ),
        entry("request.failed", None, "R-4", {"error": "permission denied"}),
        # R-5 denied, R-6 timed out, R-7 cancelled by its requester.
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-5",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "curious"},
        ),
        entry(
            "request.decided",
            "U0LEAD1",
            "R-5",
            {"verdict": "deny", "reason": "no need", "approvals": 0},
        ),
        entry("request.denied", "U0LEAD1", "R-5", {"reason": "no need"}),
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-6",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "later"},
        ),
        entry("request.reminded", None, "R-6", {"approvers": ["U0LEAD1"]}),
        entry("request.timed_out", None, "R-6", {"reason": "nobody decided in time"}),
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-7",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "oops"},
        ),
        entry("request.cancelled", "U0ONCALL2", "R-7", {"reason": "cancelled by requester"}),
        # R-8 never delivered; R-9 ended by the close; R-10 cancelled by it, issued after it.
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-8",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "again"},
        ),
        entry("request.approved", None, "R-8", {"approvers": ["U0LEAD1"]}),
        entry("grant.issued", None, "R-8", {"grant_id": "G-8", "ends_at": ends}),
        entry("request.revoked", None, "R-8", {"reason": UNDELIVERED}),
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-9",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "still on it"},
        ),
        entry("request.approved", None, "R-9", {"approvers": ["U0LEAD1"]}),
        entry("grant.issued", None, "R-9", {"grant_id": "G-9", "ends_at": ends}),
        entry(
            "request.filed",
            "U0ONCALL2",
            "R-10",
            {"resource": "inference-logs-ro", "duration": "2h", "reason": "one more"},
        ),
        entry("request.approved", None, "R-10", {"approvers": ["U0LEAD1"]}),
        entry("vault.incident_token_created", None, None, {"accessor": "tok-1"}),
        entry("vault.incident_token_created", None, None, {"accessor": "tok-2"}),
        entry("request.revoked", "U0LEAD1", "R-9", {"reason": "incident closed"}),
        entry("request.cancelled", "U0LEAD1", "R-10", {"reason": "incident closed"}),
        entry("incident.closed", "U0LEAD1", None, {"resolution": "rolled back"}),
        entry("grant.issued", None, "R-10", {"grant_id": "G-10", "ends_at": ends}),
        entry(
            "vault.incident_tokens_revocation_failed",
            None,
            None,
            {"accessors": ["tok-1", "tok-2"], "error": "vault down"},
        ),
        entry(
            "vault.incident_tokens_revoked",
            None,
            None,
            {"accessors": ["tok-1"], "confirmed_at": "2026-11-23T15:00:00.000000+00:00"},
        ),
    ]
    chain: list[AuditEvent] = []
    for item in entries:
        chain.append(next_in_chain(item, chain[-1] if chain else None))
    other = AuditEntry("incident.opened", T0, "U0X", incident_id="INC-OTHER", data={"title": "x"})
    chain.append(next_in_chain(other, chain[-1]))
    return chain


# What the summary made of this chain before it read typed events, up to its audit trail.
EXPECTED_REPORT = "\n".join(
    [
        "# Incident INC-20261123-OLD1: Model latency",
        "",
        "- Severity: sev2",
        "- Opened: 2026-11-23T09:01:00.000000Z by U0ONCALL1",
        "- Commander: U0LEAD1",
        "- Closed: 2026-11-23T09:59:00.000000Z by U0LEAD1",
        "- Duration: 58m",
        "- Resolution: rolled back",
        "",
        "## Access requests",
        "",
        "### R-1 · inference-logs-ro · expired",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:04:00.000000Z for 2h: debug latency",
        "- approved by U0LEAD1 at 2026-11-23T09:05:00.000000Z",
        "- Issued: 2026-11-23T09:08:00.000000Z",
        (
            "- Extended at 2026-11-23T09:12:00.000000Z until 2026-11-23T14:00:00.000000Z "
            "(approved by U0LEAD1)"
        ),
        "- Extension denied by U0LEAD2 at 2026-11-23T09:13:00.000000Z: enough",
        (
            "- Extension approved but not applied at 2026-11-23T09:14:00.000000Z: Vault "
            "would not renew the credential past its current end"
        ),
        "- Ended: 2026-11-23T09:15:00.000000Z (expired)",
        "- Revocation confirmed by Vault: 2026-11-23T09:18:00.000000Z",
        "- Failed revocation attempts: 1",
        "",
        "### R-2 · prod-db-admin · revoked · break-glass",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:19:00.000000Z for 1h: outage",
        "- Break-glass: issued before approval; denied after the fact",
        "- denied by U0LEAD1 at 2026-11-23T09:23:00.000000Z (not an emergency)",
        "- Issued: 2026-11-23T09:22:00.000000Z",
        ("- Ended: 2026-11-23T09:24:00.000000Z (break-glass denied by U0LEAD1: not an emergency)"),
        "- Revocation confirmed by Vault: -",
        "",
        "### R-3 · prod-db-admin · revoked · break-glass",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:25:00.000000Z for 1h: outage",
        "- Break-glass: issued before approval; reviewed at 2026-11-23T09:29:00.000000Z",
        "- approved by U0LEAD1 at 2026-11-23T09:28:00.000000Z",
        "- Issued: 2026-11-23T09:27:00.000000Z",
        "- Ended: 2026-11-23T09:30:00.000000Z (revoked by U0ONCALL2)",
        "- Revocation confirmed by Vault: -",
        "",
        "### R-4 · inference-logs · failed",
        "",
        "- Requested by U0ONCALL1 at 2026-11-23T09:31:00.000000Z for 2h: on call",
        "- Approved automatically: on call in primary (escalation policy PEP1 level 1)",
        ("- Lookup failed: sre-leads (Slack @sre-leads) could not be looked up: ratelimited"),
        "- Issued: -",
        "- Ended: 2026-11-23T09:37:00.000000Z (permission denied)",
        "",
        "### R-5 · inference-logs-ro · denied",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:38:00.000000Z for 2h: curious",
        "- denied by U0LEAD1 at 2026-11-23T09:39:00.000000Z (no need)",
        "- Issued: -",
        "- Ended: 2026-11-23T09:40:00.000000Z (no need)",
        "",
        "### R-6 · inference-logs-ro · timed out",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:41:00.000000Z for 2h: later",
        "- Issued: -",
        "- Ended: 2026-11-23T09:43:00.000000Z (nobody decided in time)",
        "",
        "### R-7 · inference-logs-ro · cancelled",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:44:00.000000Z for 2h: oops",
        "- Issued: -",
        "- Ended: 2026-11-23T09:45:00.000000Z (cancelled by requester)",
        "",
        "### R-8 · inference-logs-ro · revoked",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:46:00.000000Z for 2h: again",
        "- Issued: 2026-11-23T09:48:00.000000Z",
        (
            "- Ended: 2026-11-23T09:49:00.000000Z (the credential was never delivered "
            "(Gatehouse stopped first); request access again)"
        ),
        "- Revocation confirmed by Vault: -",
        "",
        "### R-9 · inference-logs-ro · revoked",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:50:00.000000Z for 2h: still on it",
        "- Issued: 2026-11-23T09:52:00.000000Z",
        "- Ended: 2026-11-23T09:57:00.000000Z (incident closed)",
        "- Revocation confirmed by Vault: -",
        "",
        "### R-10 · inference-logs-ro · cancelled",
        "",
        "- Requested by U0ONCALL2 at 2026-11-23T09:53:00.000000Z for 2h: one more",
        (
            "- Issued: 2026-11-23T10:00:00.000000Z (after the request had ended: revoked at "
            "once, never delivered)"
        ),
        "- Ended: 2026-11-23T09:58:00.000000Z (incident closed)",
        "- Revocation confirmed by Vault: -",
        "",
        "## What closing did",
        "",
        (
            "Closing revoked 1 active grant; revoked 1 credential Vault issued after the close "
            "(never delivered); 5 revocations not yet confirmed by Vault (retrying); 1 incident "
            "token not yet revoked (reconciliation retries)."
        ),
        "",
        "",
    ]
)


def test_an_old_chain_is_summarized_as_it_always_was() -> None:
    chain = _old_chain()
    summary = summarize_incident(INCIDENT, chain, head=chain[-1])
    report = summary.to_markdown()
    assert report.startswith(EXPECTED_REPORT)
    assert f"62 events for this incident. Chain head: event 63, `{chain[-1].hash}`." in report
    assert f"gatehouse audit verify --anchor 63:{chain[-1].hash}" in report
    assert (summary.commander, summary.opened_by) == ("U0LEAD1", "U0ONCALL1")
    assert summary.unrevoked_incident_tokens == ["tok-2"]
    lines = {line.request_id: line for line in summary.requests}
    assert lines["R-1"].times_extended == 1 and lines["R-1"].revocation_failures == 1
    assert not lines["R-1"].break_glass  # filed before `break_glass` was stored
    assert [r.request_id for r in summary.ended_by_close("revoked")] == ["R-9"]
    assert [r.request_id for r in summary.issued_after_close] == ["R-10"]
    assert lines["R-2"].end_reason == "break-glass denied by U0LEAD1: not an emergency"
