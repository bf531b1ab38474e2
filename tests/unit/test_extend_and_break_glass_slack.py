"""What people type and see for extend and break-glass: parsing, policy, cards, forms, home."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.access import AccessRequest, RequestState, Verdict
from bot.domain.errors import InvalidInput
from bot.domain.extension import Extension
from bot.domain.rules import Notify
from bot.policy import PolicyError, parse_policy
from bot.slack import ids
from bot.slack.blocks.access import approval_card
from bot.slack.blocks.extension import extend_modal
from bot.slack.blocks.home import home_view
from bot.slack.parsing import parse_access_command, split_break_glass
from tests.unit.example_policy import example_policy
from tests.unit.test_policy import dump, example_doc, only_problem

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = example_policy()


def active_request(*, break_glass: bool = False) -> AccessRequest:
    return AccessRequest(
        id="R-ABCDEFGH",
        incident_id="INC-1",
        resource="serving-cluster-exec" if break_glass else "inference-logs-ro",
        requester_id="U0ONCALL2",
        reason="pods crash-looping",
        duration=timedelta(minutes=15 if break_glass else 60),
        requested_at=NOW,
        approvals_required=1,
        eligible_approvers=frozenset({"U0LEAD1", "U0LEAD2"}),
        state=RequestState.ACTIVE,
        activated_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        break_glass=break_glass,
    )


def actions_in(blocks: object) -> list[str]:
    text = json.dumps(blocks)
    return [a for a in (ids.APPROVE, ids.DENY, ids.EXTEND_APPROVE, ids.EXTEND_DENY) if a in text]


@pytest.mark.parametrize(
    ("typed", "rest", "flag"),
    [
        ("serving-cluster-exec 10m pods --break-glass", "serving-cluster-exec 10m pods", True),
        ("serving-cluster-exec --break-glass 10m pods", "serving-cluster-exec 10m pods", True),
        ("serving-cluster-exec 10m pods —break-glass", "serving-cluster-exec 10m pods", True),
        ("serving-cluster-exec 10m pods", "serving-cluster-exec 10m pods", False),
    ],
)
def test_the_break_glass_flag_is_found_wherever_it_is_typed(
    typed: str, rest: str, flag: bool
) -> None:
    assert split_break_glass(typed) == (rest, flag)


def test_access_extend_is_parsed_with_a_clear_error_for_each_mistake() -> None:
    parsed = parse_access_command("extend r-abcdefgh 30M still digging")
    assert (parsed.verb, parsed.request_id, parsed.duration, parsed.reason) == (
        "extend",
        "R-ABCDEFGH",
        "30m",
        "still digging",
    )
    assert parse_access_command("extend R-ABCDEFGH 1h").reason is None
    for typed, gist in [
        ("extend", "by how much"),
        ("extend R-ABCDEFGH", "by how much"),
        ("extend nonsense 1h", "by how much"),
        ("extend R-ABCDEFGH soon", "not a duration"),
        ("extend R-ABCDEFGH 1h " + "x" * 600, "reason"),
    ]:
        with pytest.raises(InvalidInput, match=gist):
            parse_access_command(typed)


def test_policy_reads_extension_approvals_and_checks_them() -> None:
    doc = example_doc()
    policy = parse_policy(dump(doc))
    assert policy.resources["feature-store-rw"].extension_approvals_required == 1
    doc["resources"]["inference-logs-ro"]["extension_approvals_required"] = 4
    problem = only_problem(doc)
    assert problem.path == "resources.inference-logs-ro.extension_approvals_required"
    assert "needs 4 approvals" in problem.message
    doc["resources"]["inference-logs-ro"]["extension_approvals_required"] = 0
    with pytest.raises(PolicyError):
        parse_policy(dump(doc))


def test_break_glass_card_has_review_buttons_only_while_a_review_is_due() -> None:
    request = active_request(break_glass=True)
    rule = POLICY.resource(request.resource)
    text, blocks = approval_card(request, rule)
    # Loud to the channel; each reviewer has the review as a task, so none is mentioned.
    assert "by break-glass, without approval" in text and "asked privately" in text
    assert "<!here>" in json.dumps(blocks) and "<@U0LEAD1>" not in text + json.dumps(blocks)
    loud = replace(rule, notify=Notify.CHANNEL_MENTION)
    assert "<@U0LEAD1>" in approval_card(request, loud)[0]
    assert actions_in(blocks) == [ids.APPROVE, ids.DENY]
    request.decide(approver_id="U0LEAD1", verdict=Verdict.APPROVE, now=NOW)
    _, reviewed = approval_card(request, rule)
    assert actions_in(reviewed) == [] and "Reviewed" in json.dumps(reviewed)


def test_card_and_home_offer_extension_buttons_to_its_approvers_only() -> None:
    request = active_request()
    request.extensions.append(
        Extension(
            id="X-1",
            request_id=request.id,
            requested_by=request.requester_id,
            duration=timedelta(minutes=30),
            requested_at=NOW,
            approvals_required=1,
            eligible_approvers=request.eligible_approvers,
        )
    )
    _, blocks = approval_card(request, POLICY.resource(request.resource))
    assert actions_in(blocks) == [ids.EXTEND_APPROVE, ids.EXTEND_DENY]
    assert request.awaits_decision_from("U0LEAD1")
    assert not request.awaits_decision_from("U0ONCALL2")
    home = home_view(to_decide=[request], active=[], incidents=[], now=NOW)
    assert actions_in(home["blocks"]) == [ids.EXTEND_APPROVE, ids.EXTEND_DENY]


def test_the_extend_form_offers_no_more_than_the_headroom() -> None:
    request = active_request()
    form = extend_modal(request, timedelta(minutes=47, seconds=30), "C1")
    options = [
        o["value"]
        for b in form["blocks"]
        if b.get("type") == "input"
        for o in b["element"].get("options", [])
    ]
    assert options == ["15m", "30m", "47m"]
