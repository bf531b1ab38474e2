"""The Vault effects and the expiry timers follow the event stream: each once, idempotent
when a restarted follower repeats them, and never held up by Vault failing."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.app import effects, extending, lifecycle, workflows
from bot.app.deps import Deps
from bot.domain.access import RequestState, Verdict
from bot.domain.errors import CredentialUnavailable
from bot.domain.extension import ExtensionState
from bot.domain.grant import Grant, GrantStatus
from bot.services import access, incidents, sweeps
from bot.services.event_stream import StreamFollower
from bot.services.issuing import StoredIncidentTokens
from tests.unit.fakes import FakeBroker
from tests.unit.slack.scene import Clock, approve, broker, filed, state


def restarted(deps: Deps) -> Deps:
    """The same database, Vault and Slack, a new process: followers with no memory."""
    return replace(deps, follower=None)


def grant_of(deps: Deps, request_id: str) -> Grant:
    with deps.uow() as tx:
        grant = tx.grants.get_for_request(request_id)
    assert grant is not None
    return grant


def cursor_at(deps: Deps, name: str) -> int:
    with deps.uow() as tx:
        cursor = tx.sink_cursors.lock(name)
    assert cursor is not None
    return cursor.event_seq


def head(deps: Deps) -> int:
    with deps.uow() as tx:
        last = tx.audit.head()
    return last.seq if last is not None else 0


def active(deps: Deps) -> str:
    _, request_id = filed(deps)
    approve(deps, request_id)
    assert state(deps, request_id) is RequestState.ACTIVE
    return request_id


def test_a_recorded_revocation_is_revoked_by_the_stream_once(deps: Deps) -> None:
    request_id = active(deps)
    grant = workflows.record_revoke(deps, request_id=request_id, user="U0ONCALL2")
    assert grant is not None and broker(deps).revoked == []  # recorded only: Vault not asked
    deps.notify()
    assert broker(deps).revoked == [grant.id]
    assert grant_of(deps, request_id).status is GrantStatus.REVOKED
    again = restarted(deps)  # from the saved cursor, before this revocation
    again.notify()
    assert broker(deps).revoked == [grant.id]  # a revoked grant is left alone


def test_a_revocation_a_stopped_worker_left_is_revoked_by_another(deps: Deps) -> None:
    """Killed after the revocation was recorded and before Vault was asked: another replica's
    follower (here, the timer's call in a new process) revokes it."""
    request_id = active(deps)
    grant = workflows.record_revoke(deps, request_id=request_id, user="U0ONCALL2")
    assert grant is not None
    other = restarted(deps)
    other.notify()
    assert broker(deps).revoked == [grant.id]
    assert grant_of(deps, request_id).status is GrantStatus.REVOKED


def test_vault_down_leaves_the_grant_to_its_retries_and_the_stream_moves_on(
    deps: Deps, clock: Clock
) -> None:
    first, second = active(deps), active(deps)
    broker(deps).fail_revoke = True
    workflows.revoke(deps, request_id=first, user="U0ONCALL2")
    failed = grant_of(deps, first)
    assert failed.status is GrantStatus.REVOKING and failed.revoke_attempts == 1
    assert failed.revoke_retry_at is not None and failed.last_error
    broker(deps).fail_revoke = False
    workflows.revoke(deps, request_id=second, user="U0ONCALL2")
    # The stream went past the first grant: the second is revoked, the first waits its turn.
    assert grant_of(deps, second).status is GrantStatus.REVOKED
    assert grant_of(deps, first).status is GrantStatus.REVOKING
    assert deps.follower is not None
    deps.follower.save_progress()
    assert cursor_at(deps, effects.VAULT_EFFECTS) == head(deps)
    # Nor does a later follow ask again before the grant's backoff: that is the sweep's.
    restarted(deps).notify()
    assert broker(deps).revoked == [grant_of(deps, second).id]
    clock.now = failed.revoke_retry_at
    lifecycle.sweep(deps)
    assert grant_of(deps, first).status is GrantStatus.REVOKED


def test_a_grant_revoked_elsewhere_is_not_asked_about_again(deps: Deps, clock: Clock) -> None:
    request_id = active(deps)
    clock.now += timedelta(minutes=31)
    lifecycle.expire(deps, request_id)  # revoked inline by the expiry
    revoked = list(broker(deps).revoked)
    assert len(revoked) == 1
    restarted(deps).notify()
    assert broker(deps).revoked == revoked


def extension_approved(deps: Deps, request_id: str) -> None:
    extending.ask(deps, request_id=request_id, user="U0ONCALL2", duration="30m", reason="more")
    extending.decide(
        deps, request_id=request_id, approver="U0LEAD1", verdict=Verdict.APPROVE, reason=None
    )


def test_an_approved_extension_is_renewed_once_and_its_timer_armed(
    deps: Deps, clock: Clock
) -> None:
    timers: list[tuple[str, datetime]] = []
    deps.schedule_expiry = lambda request_id, at: timers.append((request_id, at))
    request_id = active(deps)
    first_end = clock.now + timedelta(minutes=30)
    assert timers == [(request_id, first_end)]
    extension_approved(deps, request_id)
    (extension,) = access.get_request(uow=deps.uow, request_id=request_id).extensions
    assert extension.state is ExtensionState.APPLIED
    assert len(broker(deps).renewed) == 1
    new_end = access.get_request(uow=deps.uow, request_id=request_id).ends_at
    assert new_end == first_end + timedelta(minutes=30)
    assert timers == [(request_id, first_end), (request_id, new_end)]
    again = restarted(deps)
    again.schedule_expiry = lambda request_id, at: timers.append((request_id, at))
    again.notify()
    assert len(broker(deps).renewed) == 1  # an applied extension is left alone
    # Timers armed again at the same ends replace the ones armed before: the last one stands.
    assert timers[-1] == (request_id, new_end)


def test_an_extension_vault_cannot_renew_now_is_left_to_the_sweep(deps: Deps) -> None:
    request_id = active(deps)
    broker(deps).fail_renew = CredentialUnavailable("Vault is unavailable.")
    extension_approved(deps, request_id)
    (extension,) = access.get_request(uow=deps.uow, request_id=request_id).extensions
    assert extension.state is ExtensionState.APPROVED
    broker(deps).fail_renew = None
    assert extending.sweep(deps) == 1
    (extension,) = access.get_request(uow=deps.uow, request_id=request_id).extensions
    assert extension.state is ExtensionState.APPLIED
    assert len(broker(deps).renewed) == 1


def test_ended_access_gets_no_timer(deps: Deps) -> None:
    timers: list[str] = []
    request_id = active(deps)
    workflows.revoke(deps, request_id=request_id, user="U0ONCALL2")
    again = restarted(deps)  # reads the Issued event again, the access ended since
    again.schedule_expiry = lambda request_id, _at: timers.append(request_id)
    again.notify()
    assert timers == []


def test_new_cursors_start_at_the_head_and_leave_what_came_before(deps: Deps) -> None:
    notifier = deps.views.stream_handler(uow=deps.uow, chat=deps.chat, policy=deps.policy)
    before = replace(  # the release before these followers: the notifier only
        deps, follower=StreamFollower(uow=deps.uow, handlers=[notifier], clock=deps.clock)
    )
    request_id = active(before)
    grant = workflows.record_revoke(before, request_id=request_id, user="U0ONCALL2")
    assert grant is not None
    before.notify()
    shown = cursor_at(deps, deps.notifier)
    upgraded = restarted(deps)
    assert upgraded.follower is not None
    upgraded.follower.start_cursors()
    assert cursor_at(deps, effects.VAULT_EFFECTS) == head(deps)
    assert cursor_at(deps, effects.EXPIRY_TIMERS) == head(deps)
    assert cursor_at(deps, deps.notifier) == shown  # a cursor that exists is not moved
    upgraded.notify()
    assert broker(deps).revoked == []  # before the follower: the sweep's retries take it
    lifecycle.sweep(upgraded)
    assert broker(deps).revoked == [grant.id]


class _Stopped(Exception):
    """The process stopping right after the close committed."""


def test_the_grants_of_a_close_under_way_are_left_to_the_close(
    deps: Deps, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close committed, then stopped before Vault was asked: neither the follower nor the
    sweep's retries revoke its grants one by one; recovery finishes the close, which cuts the
    incident's token tree and confirms each grant."""
    deps.broker = FakeBroker(ledger=StoredIncidentTokens(deps.uow, clock))
    channel, request_id = filed(deps)
    approve(deps, request_id)

    def stop(**_: object) -> incidents.CloseResult:
        raise _Stopped

    with monkeypatch.context() as patched:
        patched.setattr(incidents, "complete_close", stop)
        with pytest.raises(_Stopped):
            lifecycle.close_incident(deps, channel_id=channel, user="U0ONCALL1", resolution="x")
    grant = grant_of(deps, request_id)
    assert grant.status is GrantStatus.REVOKING
    restarted(deps).notify()
    with deps.uow() as tx:
        assert tx.grants.list_due_revocations(clock.now, 10) != []  # due, yet not the sweep's
    sweeps.retry_revocations(uow=deps.uow, broker=deps.broker, clock=clock)
    assert broker(deps).revoked == [] and broker(deps).confirmed == []
    lifecycle.recover(deps)
    assert broker(deps).revoked_incident_tokens != [] and broker(deps).revoked == []
    assert broker(deps).confirmed == [grant.id]
    assert grant_of(deps, request_id).status is GrantStatus.REVOKED
