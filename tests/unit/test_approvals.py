"""One approval rule for requests, break-glass reviews and extensions (`Approvals`)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.access import Approvals, Decision, Tally, Verdict
from bot.domain.errors import AlreadyDone, InvalidInput, NotAllowed

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
RULE = Approvals(required=2, eligible=frozenset({"U1", "U2", "U3", "UASKER"}), asker="UASKER")
WORDS = {"already": "already", "own": "own", "not_approver": "not an approver"}


def decide(
    decisions: list[Decision], who: str, verdict: Verdict, reason: str | None = None
) -> Decision:
    decision = RULE.decide(
        decisions,
        subject_id="R-1",
        approver_id=who,
        verdict=verdict,
        reason=reason,
        now=T0,
        **WORDS,
    )
    decisions.append(decision)
    return decision


def test_n_distinct_approvals_approve_and_one_deny_ends_it() -> None:
    decisions: list[Decision] = []
    decide(decisions, "U1", Verdict.APPROVE)
    assert RULE.tally(decisions) is Tally.OPEN
    decide(decisions, "U2", Verdict.APPROVE, reason="looks right")
    assert RULE.tally(decisions) is Tally.APPROVED
    assert decisions[1].reason == "looks right"  # an approver's comment is kept
    denied: list[Decision] = []
    decide(denied, "U1", Verdict.DENY, reason="not now")
    assert RULE.tally(denied) is Tally.DENIED


def test_the_asker_a_stranger_and_a_second_decision_are_refused() -> None:
    decisions: list[Decision] = []
    with pytest.raises(NotAllowed, match="own"):
        decide(decisions, "UASKER", Verdict.APPROVE)
    with pytest.raises(NotAllowed, match="not an approver"):
        decide(decisions, "USTRANGER", Verdict.APPROVE)
    decide(decisions, "U1", Verdict.APPROVE)
    with pytest.raises(AlreadyDone):
        decide(decisions, "U1", Verdict.DENY, reason="changed my mind")
    with pytest.raises(InvalidInput):
        decide(decisions, "U2", Verdict.DENY, reason="   ")  # a deny says why
    assert RULE.waiting_on(decisions) == {"U2", "U3"}


@given(st.lists(st.tuples(st.sampled_from(["U1", "U2", "U3"]), st.booleans()), max_size=6))
def test_the_tally_is_approved_only_with_enough_distinct_approvers_and_no_deny(
    clicks: list[tuple[str, bool]],
) -> None:
    decisions: list[Decision] = []
    for who, approve in clicks:
        try:
            decide(decisions, who, Verdict.APPROVE if approve else Verdict.DENY, reason="x")
        except AlreadyDone:
            continue
    approvers = {d.approver_id for d in decisions if d.verdict is Verdict.APPROVE}
    denied = any(d.verdict is Verdict.DENY for d in decisions)
    expected = Tally.DENIED if denied else Tally.APPROVED if len(approvers) >= 2 else Tally.OPEN
    assert RULE.tally(decisions) is expected
    assert "UASKER" not in approvers
