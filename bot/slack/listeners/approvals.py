"""Approve and Deny, on the approval card or on App Home, and the deny-reason form."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from slack_bolt import Ack, App, BoltContext

from bot.app import workflows
from bot.app.deps import Deps
from bot.domain.access import Verdict, is_request_id
from bot.domain.errors import ChatError, GatehouseError, NotFound
from bot.domain.text import visible
from bot.services import access
from bot.slack import ids, payloads
from bot.slack.blocks import access as blocks
from bot.slack.errors import user_message
from bot.slack.listeners import home
from bot.slack.listeners.guard import form_or_refused
from bot.slack.metadata import TamperedMetadata
from bot.slack.payloads import Click, MalformedPayload, Submission

log = logging.getLogger(__name__)


T = TypeVar("T")
Recorded = TypeVar("Recorded", covariant=True)

# Where the ack leaves its outcome for the work after it: Bolt hands the lazy functions a copy
# of the context taken once the ack function has returned.
DECIDED = "gatehouse_decided"
REFUSED = "gatehouse_refused"


class RecordDecision(Protocol[Recorded]):
    """Commits one decision in one short transaction (no Slack, no Vault)."""

    def __call__(
        self,
        deps: Deps,
        *,
        request_id: str,
        approver: str,
        verdict: Verdict,
        reason: str | None,
    ) -> Recorded: ...


def register(app: App, deps: Deps) -> None:
    register_decisions(
        app,
        deps,
        record=workflows.record_decision,
        follow_up=workflows.after_decision,
        approve_action=ids.APPROVE,
        deny_action=ids.DENY,
        deny_view=ids.DENY_REASON_VIEW,
    )


def register_decisions(
    app: App,
    deps: Deps,
    *,
    record: RecordDecision[T],
    follow_up: Callable[[Deps, T], None],
    approve_action: str,
    deny_action: str,
    deny_view: str,
) -> None:
    """Approve at a click; Deny through a form that asks why. Errors go to the clicker.

    The decision is committed before the ack: once Slack has its 200 (and Slack never sends
    a click again) the decision survives a crash, and the sweep finishes what it sets off.
    """

    def record_then_ack(ack: Ack, context: BoltContext, decide: Callable[[], T]) -> None:
        try:
            context[DECIDED] = decide()
        except Exception as error:  # refused, or the database failed: nothing was recorded
            context[REFUSED] = user_message(error)
        ack()

    def ack_approve(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        try:
            click = payloads.read(Click, body)
        except MalformedPayload:
            ack()  # refused after the ack, where the clicker can be told
            return
        record_then_ack(
            ack,
            context,
            lambda: record(
                deps,
                request_id=click.value,
                approver=click.user_id,
                verdict=Verdict.APPROVE,
                reason=None,
            ),
        )

    def ack_click(ack: Ack) -> None:
        ack()

    def approve(body: dict[str, Any], context: BoltContext) -> None:
        click = read_click(deps, body)
        if click is None:
            return
        refused: str | None = context.get(REFUSED)
        try:
            if refused is not None:
                workflows.tell_privately(deps, click.user_id, refused, click.channel_id)
            elif DECIDED in context:
                follow_up(deps, context[DECIDED])
        except Exception as error:  # reported to the clicker, privately
            workflows.tell_privately(deps, click.user_id, user_message(error), click.channel_id)
        if click.on_home:
            home.publish(deps, click.user_id)

    def ask_deny_reason(body: dict[str, Any]) -> None:
        click = read_click(deps, body)
        if click is None:
            return
        if not is_request_id(click.value):  # none of our Deny buttons carries anything else
            payloads.refused(MalformedPayload("Click", "actions.0.value: not a request id"))
            workflows.tell_privately(deps, click.user_id, payloads.SORRY, click.channel_id)
            return
        try:
            request = access.get_request(uow=deps.uow, request_id=click.value)
        except NotFound:
            request = None  # refused when the form is submitted, as before
        modal = blocks.deny_reason_modal(click.value, callback_id=deny_view, request=request)
        modal["private_metadata"] = f"{click.value}|{click.channel_id or ''}"
        try:
            deps.chat.open_view(click.trigger_id, deps.seal.seal_view(click.user_id, modal))
        except Exception as error:
            workflows.tell_privately(deps, click.user_id, user_message(error), click.channel_id)

    def ack_deny_reason(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """A deny needs a reason: an empty one is refused inside the form, nothing is lost.
        The denial is committed before the form closes; if the database fails, the form
        stays open and says so."""
        try:
            form = form_or_refused(
                ack,
                form="deny",
                block=ids.DENY_REASON_BLOCK,
                read=lambda: read_deny_form(deps, body),
            )
        except NoReason:
            ack(response_action="errors", errors={ids.DENY_REASON_BLOCK: "Say why."})
            return
        if form is None:
            return
        try:
            context[DECIDED] = record(
                deps,
                request_id=form.request_id,
                approver=form.user,
                verdict=Verdict.DENY,
                reason=form.reason,
            )
        except GatehouseError as refusal:  # already decided, not an approver…: told privately
            context[REFUSED] = user_message(refusal, typed=form.reason)
        except Exception as error:
            ack(response_action="errors", errors={ids.DENY_REASON_BLOCK: user_message(error)})
            return
        ack()

    def deny(body: dict[str, Any], context: BoltContext) -> None:
        try:
            form = read_deny_form(deps, body)
        except (MalformedPayload, TamperedMetadata, NoReason):
            return  # the ack refused it inside the form
        refused: str | None = context.get(REFUSED)
        try:
            if refused is not None:
                workflows.tell_privately(deps, form.user, refused, form.channel)
            elif DECIDED in context:
                follow_up(deps, context[DECIDED])
        except Exception as error:
            workflows.tell_privately(
                deps, form.user, user_message(error, typed=form.reason), form.channel
            )

    app.action(approve_action)(ack=ack_approve, lazy=[approve])
    app.action(deny_action)(ack=ack_click, lazy=[ask_deny_reason])
    app.view(deny_view)(ack=ack_deny_reason, lazy=[deny])


def read_click(deps: Deps, body: dict[str, Any]) -> Click | None:
    """The click, or None when it is not in the shape of our buttons: one log line, and the
    clicker is told privately when the payload names a well-formed user."""
    try:
        return payloads.read(Click, body)
    except MalformedPayload as error:
        payloads.refused(error)
        tell_if_possible(deps, body, payloads.SORRY)
        return None


def tell_if_possible(deps: Deps, body: dict[str, Any], text: str) -> None:
    """A private message to the payload's user, if it names a well-formed one; best effort."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not payloads.is_user_id(user_id):
        return
    container, where = body.get("container"), body.get("channel")
    channel = container.get("channel_id") if isinstance(container, dict) else None
    if channel is None and isinstance(where, dict):
        channel = where.get("id")
    try:
        workflows.tell_privately(
            deps,
            user_id,
            text,
            channel if isinstance(channel, str) and payloads.is_channel_id(channel) else None,
        )
    except ChatError:
        log.warning("could not tell the user about a malformed payload")


class NoReason(Exception):
    """A deny form submitted without a reason."""


@dataclass(frozen=True)
class DenyForm:
    user: str
    request_id: str
    channel: str | None
    reason: str


def read_deny_form(deps: Deps, body: dict[str, Any]) -> DenyForm:
    """The deny form, its request and channel from signed metadata, with a reason; else
    MalformedPayload, TamperedMetadata or NoReason."""
    submitted = payloads.read(Submission, body)
    request_id, _, channel = deps.seal.verify(
        submitted.user_id, submitted.private_metadata
    ).partition("|")
    state = body["view"].get("state")
    values = state.get("values") if isinstance(state, dict) else None
    block = values.get(ids.DENY_REASON_BLOCK) if isinstance(values, dict) else None
    element = block.get(ids.DENY_REASON_INPUT) if isinstance(block, dict) else None
    reason = element.get("value") if isinstance(element, dict) else None
    if not isinstance(reason, str) or not visible(reason):
        raise NoReason()
    return DenyForm(
        user=submitted.user_id,
        request_id=request_id,
        channel=channel if payloads.is_channel_id(channel) else None,
        reason=reason,
    )
