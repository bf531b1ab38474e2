"""What every application command needs, built once by the composition root.

The application decides and orders; how a message reads in Slack (Block Kit, mentions) is the
Slack adapter's, given here as `Views`, and so are the signed form metadata (`FormSeal`) and the
notifier that shows the audit chain in Slack (`Views.stream_handler`). The notifier follows the
chain with the application's own handlers (`effects.py`: Vault, the expiry timers), from one
shared read.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from bot.app.effects import VAULT_EFFECTS, ExpiryTimers, VaultEffects
from bot.domain.incident import Incident
from bot.domain.ports import (
    ChatGateway,
    CredentialBroker,
    Directory,
    IssuedCredential,
    OnCall,
    UnitOfWorkFactory,
)
from bot.domain.rules import AccessPolicy, ResourceRule
from bot.domain.summary import IncidentSummary
from bot.domain.wording import Wording
from bot.services.event_stream import StreamFollower, StreamHandler

Message = tuple[str, list[dict[str, Any]]]  # the notification text, and the blocks
log = structlog.get_logger(__name__)


class Views(Protocol):
    """How the application's messages read in chat (the Slack adapter's Block Kit)."""

    def topic(self, incident: Incident) -> str: ...
    def incident_card(self, incident: Incident) -> Message: ...
    def handed_off(self, incident: Incident, previous: str, by_user: str) -> str: ...
    def channel_made_late(self, incident: Incident) -> str: ...
    def summary(self, summary: IncidentSummary, *, archive_in: timedelta | None) -> Message:
        """The close summary; `archive_in`: when the channel is archived (None: never)."""
        ...

    def delivery(
        self,
        credential: IssuedCredential,
        rule: ResourceRule,
        *,
        request_id: str,
        vault_addr: str | None,
        now: datetime,
        extendable: bool,
    ) -> Message: ...
    def with_lookup_notes(self, refusal: Wording, notes: Sequence[str]) -> Wording: ...
    def stream_handler(
        self, *, uow: UnitOfWorkFactory, chat: ChatGateway, policy: AccessPolicy
    ) -> StreamHandler:
        """The notifier: what follows the audit chain and shows it in chat."""
        ...


class FormSeal(Protocol):
    """Signs what a form carries through Slack (its private metadata) for one user."""

    def sign(self, user: str, value: str) -> str: ...
    def verify(self, user: str, sealed: str) -> str: ...
    def seal_view(self, user: str, view: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class Deps:
    """Everything an application command needs, built once by the composition root."""

    uow: UnitOfWorkFactory
    policy: AccessPolicy
    broker: CredentialBroker
    chat: ChatGateway
    clock: Callable[[], datetime]
    views: Views
    # Signs the forms' private metadata. The composition root derives it from a configured
    # secret so every replica checks what another signed.
    seal: FormSeal
    vault_addr: str | None = None
    directory: Directory | None = None  # Slack user groups
    oncall: OnCall | None = None  # PagerDuty; None when not configured
    # Called with (request id, end) when a grant's end is set or changes (by the expiry-timers
    # follower): the expiry timers' `schedule_expiry` when the bot runs its scheduler.
    schedule_expiry: Callable[[str, datetime], None] = field(default=lambda _request, _end: None)
    # Follows the audit chain: shows it in chat, revokes and renews in Vault, arms the expiry
    # timers; built from the fields above by default.
    follower: StreamFollower | None = None
    # How a worker waits before trying Slack again (tests pass one that does not sleep).
    sleep: Callable[[float], None] = time.sleep
    notifier: str = field(init=False, default="")  # the notifier's cursor name

    def __post_init__(self) -> None:
        notifier = self.views.stream_handler(uow=self.uow, chat=self.chat, policy=self.policy)
        self.notifier = notifier.name
        if self.follower is None:
            handlers = [notifier, VaultEffects(self), ExpiryTimers(self)]
            self.follower = StreamFollower(uow=self.uow, handlers=handlers, clock=self.clock)

    def notify(self, *, wait: bool = False) -> None:
        """Carry out what has been recorded and not yet followed: show it in Slack, revoke
        and renew in Vault, arm the timers. With `wait`, wait for whoever else shows it in
        Slack. Never raises: what is left (Slack down, another worker busy) is done by the
        next call or the timer."""
        assert self.follower is not None
        try:
            self.follower.follow(waiting_for=[self.notifier] if wait else ())
        except Exception:
            log.exception("effects not carried out; the timer tries again")

    def notify_through(self) -> bool:
        """Show in Slack everything recorded so far, waiting for other workers; False when
        some of it is not shown yet (Slack failing, or the notifier backing off after it did)."""
        return self._through(self.notifier)

    def vault_through(self) -> bool:
        """Have Vault revoke and renew what has been recorded so far, waiting for any other
        worker doing so, before telling the outcome; Vault's own failures are recorded on the
        grant or the extension (and retried by the sweep), so they count as done."""
        return self._through(VAULT_EFFECTS)

    def _through(self, name: str) -> bool:
        assert self.follower is not None
        try:
            return self.follower.follow_through(name)
        except Exception:
            log.exception("effects not carried out; the timer tries again", follower=name)
            return False
