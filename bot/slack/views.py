"""The Slack adapter's side of the application's `Views`: Block Kit for each message, and the
notifier that shows the audit chain in Slack."""

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.app.deps import Deps, Message
from bot.domain.incident import Incident
from bot.domain.ports import ChatGateway, IssuedCredential, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy, ResourceRule
from bot.domain.summary import IncidentSummary
from bot.domain.wording import Wording
from bot.services.event_stream import StreamHandler
from bot.slack.blocks import access as access_blocks
from bot.slack.blocks import incident as incident_blocks
from bot.slack.metadata import MetadataSeal
from bot.slack.notifier import SlackNotifier


class SlackViews:
    """Implements `bot.app.deps.Views` with the builders of `bot/slack/blocks/`."""

    def topic(self, incident: Incident) -> str:
        return incident_blocks.topic(incident)

    def incident_card(self, incident: Incident) -> Message:
        return incident_blocks.incident_card(incident)

    def handed_off(self, incident: Incident, previous: str, by_user: str) -> str:
        return incident_blocks.handed_off(incident, previous, by_user)

    def channel_made_late(self, incident: Incident) -> str:
        return incident_blocks.channel_made_late(incident)

    def summary(self, summary: IncidentSummary, *, archive_in: timedelta | None) -> Message:
        return incident_blocks.summary_blocks(summary, archive_in=archive_in)

    def delivery(
        self,
        credential: IssuedCredential,
        rule: ResourceRule,
        *,
        request_id: str,
        vault_addr: str | None,
        now: datetime,
        extendable: bool,
    ) -> Message:
        return access_blocks.delivery(
            credential,
            rule,
            request_id=request_id,
            vault_addr=vault_addr,
            now=now,
            extendable=extendable,
        )

    def with_lookup_notes(self, refusal: Wording, notes: Sequence[str]) -> Wording:
        return access_blocks.with_lookup_notes(refusal, tuple(notes))

    def stream_handler(
        self, *, uow: UnitOfWorkFactory, chat: ChatGateway, policy: AccessPolicy
    ) -> StreamHandler:
        return SlackNotifier(uow=uow, chat=chat, policy=policy)


def slack_deps(**fields: Any) -> Deps:
    """`Deps` with Slack's views, and a seal with a random key unless one is given (one
    process; the composition root derives it from a configured secret)."""
    fields.setdefault("views", SlackViews())
    fields.setdefault("seal", MetadataSeal(secrets.token_bytes(32)))
    return Deps(**fields)
