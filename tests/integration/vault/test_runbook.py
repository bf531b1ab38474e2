"""docs/operations.md, "A revocation is stuck", played against the emulator: what it says holds."""

import re
from datetime import timedelta
from pathlib import Path

from bot.domain.audit import Action
from bot.domain.grant import GrantStatus
from bot.services import access
from bot.services.sweeps import retry_revocations

# `world` is a fixture: a migrated store, Vault set up by setup.sh, the ML database.
from tests.integration.vault.test_end_to_end import POLICY, World, world  # noqa: F401

BOT_POLICY = Path(__file__).resolve().parents[3] / "deploy" / "vault" / "policies" / "gatehouse.hcl"


def test_a_stuck_revocation_revoked_by_hand_is_confirmed_once_the_cause_is_fixed(
    world: World,  # noqa: F811
) -> None:
    issued = world.issue(world.approved())
    assert issued.credential is not None and issued.credential.wrapping_token
    creds = world.unwrap(issued.credential.wrapping_token)["data"]
    world.database.users.append(creds["username"])
    root = world.vault.root()
    policy = BOT_POLICY.read_text(encoding="utf-8")
    without_revoke = re.sub(r'path "auth/token/revoke-accessor" \{[^}]*\}', "", policy)
    assert without_revoke != policy
    root.sys.create_or_update_policy("gatehouse", without_revoke)

    # The requester ends the access early; Vault refuses the bot: the revocation is stuck.
    grant = access.revoke_access(
        uow=world.uow,
        policy=POLICY,
        broker=world.broker,
        request_id=issued.request.id,
        by_user="U0ONCALL2",
        clock=world.clock,
    )
    assert grant.status is GrantStatus.REVOKING
    assert grant.last_error is not None
    assert "lacks the 'update' capability on auth/token/revoke-accessor" in grant.last_error
    assert world.database.role_exists(creds["username"])

    # The operator ends it at once: `vault token revoke -accessor <token_accessor>`.
    assert grant.token_accessor is not None
    root.auth.token.revoke_accessor(grant.token_accessor)
    assert not world.database.role_exists(creds["username"])
    # Gatehouse cannot tell yet: the sweep keeps reporting the failure, with backoff...
    assert retry_revocations(uow=world.uow, broker=world.broker, clock=world.clock) == []
    assert world.actions().count(Action.GRANT_REVOCATION_FAILED) == 1  # not yet due
    world.now += timedelta(seconds=15)
    assert retry_revocations(uow=world.uow, broker=world.broker, clock=world.clock) == []

    # ...until the bot's policy is written again; the next due sweep confirms and records it.
    root.sys.create_or_update_policy("gatehouse", policy)
    world.now += timedelta(seconds=30)
    confirmed = retry_revocations(uow=world.uow, broker=world.broker, clock=world.clock)
    assert [g.id for g in confirmed] == [grant.id]
    assert confirmed[0].status is GrantStatus.REVOKED
    assert Action.GRANT_REVOKED in world.actions()
    assert world.actions().count(Action.GRANT_REVOCATION_FAILED) == 2
