"""What happens in Slack around extending access: the ask, the decisions, the renewal.

Everything lands on the request's own card (updated in place) and in its thread, where the
approvers are mentioned once per ask.
"""

import structlog

from bot import metrics
from bot.domain.access import Verdict
from bot.domain.extension import ExtensionState
from bot.services import extensions
from bot.slack.blocks import extension as extension_blocks
from bot.slack.workflows import Deps, incident_of_request, refresh_card

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
    log.info(
        "extension requested",
        incident_id=result.request.incident_id,
        request_id=result.request.id,
        extension_id=result.extension.id,
        user=user,
    )
    refresh_card(deps, result.request.id)
    _post_in_thread(
        deps, result, extension_blocks.extension_asked(result.request, result.extension)
    )


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
    """The card, the announcement, the renewal; an approved extension a stop left unapplied
    is applied by the sweep."""
    refresh_card(deps, result.request.id)
    if result.extension.state is ExtensionState.DENIED:
        _announce(deps, result)
    elif result.extension.state is ExtensionState.APPROVED:
        apply(deps, request_id=result.request.id)


def apply(deps: Deps, *, request_id: str) -> None:
    """Renew in Vault and report; when Vault is down, say so and let the sweep finish it."""
    result = extensions.apply_extension(
        uow=deps.uow,
        policy=deps.policy,
        broker=deps.broker,
        request_id=request_id,
        clock=deps.clock,
    )
    if result is None:
        return
    refresh_card(deps, request_id)
    _announce(deps, result)


def sweep(deps: Deps) -> int:
    """Apply approved extensions that Vault could not renew before; returns how many."""
    applied = extensions.retry_extensions(
        uow=deps.uow, policy=deps.policy, broker=deps.broker, clock=deps.clock
    )
    for result in applied:
        refresh_card(deps, result.request.id)
        _announce(deps, result)
    return len(applied)


def _announce(deps: Deps, result: extensions.ExtensionResult) -> None:
    if result.extension.state is ExtensionState.APPLIED and result.extension.new_ends_at:
        deps.schedule_expiry(result.request.id, result.extension.new_ends_at)
    if not result.extension.state.is_open:
        metrics.EXTENSIONS.labels(result.request.resource, result.extension.state.value).inc()
    _post_in_thread(
        deps, result, extension_blocks.extension_outcome(result.request, result.extension)
    )


def _post_in_thread(deps: Deps, result: extensions.ExtensionResult, text: str) -> None:
    incident = incident_of_request(deps, result.request.id)
    deps.chat.post(incident.channel_id, text=text, thread_ts=result.request.card_ts)
