"""Extending access: the ask, the decisions, the renewal.

What people see lands on the request's own card (updated in place) and in its thread, where the
approvers are mentioned once per ask; the notifier posts it from the events recorded here.
"""

import structlog

from bot.app.deps import Deps
from bot.app.effects import count_extension
from bot.domain.access import Verdict
from bot.domain.extension import ExtensionState
from bot.services import extensions
from bot.services.crashpoints import crash_point

log = structlog.get_logger(__name__)


def ask(deps: Deps, *, request_id: str, user: str, duration: str, reason: str | None) -> None:
    result = extensions.request_extension(
        uow=deps.uow,
        policy=deps.policy,
        request_id=request_id,
        by_user=user,
        duration=duration,
        reason=reason,
        now=deps.clock(),
    )
    crash_point("extension.asked")
    log.info(
        "extension requested",
        incident_id=result.request.incident_id,
        request_id=result.request.id,
        extension_id=result.extension.id,
        user=user,
    )
    deps.notify()


def decide(
    deps: Deps, *, request_id: str, approver: str, verdict: Verdict, reason: str | None
) -> None:
    after_decision(
        deps,
        record_decision(
            deps, request_id=request_id, approver=approver, verdict=verdict, reason=reason
        ),
    )


def record_decision(
    deps: Deps, *, request_id: str, approver: str, verdict: Verdict, reason: str | None
) -> extensions.ExtensionResult:
    """Commit the decision on an extension: one short transaction, no Slack and no Vault, so
    it can run before Slack is answered."""
    result = extensions.decide_extension(
        uow=deps.uow,
        request_id=request_id,
        approver_id=approver,
        verdict=verdict,
        reason=reason,
        now=deps.clock(),
    )
    log.info(
        "extension decided",
        incident_id=result.request.incident_id,
        request_id=result.request.id,
        extension_id=result.extension.id,
        verdict=verdict.value,
        user=approver,
        state=result.extension.state.value,
    )
    return result


def after_decision(deps: Deps, result: extensions.ExtensionResult) -> None:
    """The card, the announcement, the renewal (the stream's Vault effects, waited for so that
    the outcome is told right after); an approved extension a stop left unapplied is applied
    by any replica's stream follower, and one Vault could not renew by the sweep."""
    crash_point("extension.decided")
    if result.extension.state is ExtensionState.DENIED:
        count_extension(result)
    if result.extension.state is ExtensionState.APPROVED:
        deps.vault_through()
    deps.notify()


def sweep(deps: Deps) -> int:
    """Apply approved extensions that Vault could not renew before; returns how many."""
    applied = extensions.retry_extensions(
        uow=deps.uow, policy=deps.policy, broker=deps.broker, clock=deps.clock
    )
    for result in applied:
        _applied(deps, result)
    return len(applied)


def _applied(deps: Deps, result: extensions.ExtensionResult) -> None:
    """Renewed (or refused by Vault): the count, then the stream (Slack, the new end's timer)."""
    if result.extension.state is ExtensionState.APPLIED:
        crash_point("extension.applied")
    count_extension(result)
    deps.notify()
