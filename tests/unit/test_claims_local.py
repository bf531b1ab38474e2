"""Claims within one process: a held claim is true, and nothing proceeds on one that is not."""

import pytest

from bot.domain.errors import ClaimLost
from bot.store.claims import LocalClaims


def test_a_held_claim_can_be_checked_until_it_is_given_back() -> None:
    claims = LocalClaims()
    with claims.hold("issue:R-1") as mine:
        assert mine
        mine.ensure_held()
    assert not mine
    with pytest.raises(ClaimLost):
        mine.ensure_held()


def test_a_refused_claim_lets_nothing_proceed() -> None:
    claims = LocalClaims()
    with claims.hold("revoke:G-1") as mine, claims.hold("revoke:G-1") as theirs:
        assert mine and not theirs
        with pytest.raises(ClaimLost):
            theirs.ensure_held()
    with claims.hold("revoke:G-1") as free_now:
        assert free_now
