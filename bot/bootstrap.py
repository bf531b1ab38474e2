"""Composition root: the one place that builds engine, policy, Vault and services from settings.

Nothing happens at import time; `build` does the work when a command asks for it.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette

from bot.config import Settings
from bot.domain.errors import SinkMisconfigured
from bot.domain.ports import AuditSink, Directory, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.policy import load_policy
from bot.scheduler import ExpiryTimers, Job, build_scheduler
from bot.services import issuing, sweeps
from bot.services.audit_export import export_audit, export_backlog
from bot.services.checkpoints import sign_checkpoint
from bot.services.sweeps import reconcile_vault
from bot.slack import extending, lifecycle
from bot.slack.app import create_app
from bot.slack.http import create_http_app
from bot.slack.workflows import Deps
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from integrations import metrics
from integrations.audit_signing import Ed25519Signer
from integrations.oncall import PagerDutyOnCall
from integrations.sinks import SplunkHecSink, WebhookSink
from integrations.slack_web import SlackChat, SlackDirectory, make_web_client
from integrations.vault import VaultConfig, VaultCredentialBroker, VaultSession

log = logging.getLogger(__name__)


class NotReady(Exception):
    """Something must be fixed before the bot can start; the message says what."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gatehouse:
    settings: Settings
    policy: AccessPolicy
    engine: Engine
    uow: SqlUnitOfWorkFactory
    broker: VaultCredentialBroker
    sinks: list[WebhookSink | SplunkHecSink] = field(default_factory=list)


def vault_config(settings: Settings) -> VaultConfig:
    missing = settings.missing_for_vault()
    if missing:
        raise NotReady(
            f"Vault is not configured: {', '.join(missing)} not set "
            f"(GATEHOUSE_VAULT_AUTH={settings.vault_auth}). See deploy/vault/README.md."
        )
    assert settings.vault_addr is not None
    return VaultConfig(
        address=settings.vault_addr,
        auth=settings.vault_auth,
        token=settings.vault_token.get_secret_value() if settings.vault_token else None,
        role_id=settings.vault_role_id,
        secret_id=(
            settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else None
        ),
        kubernetes_role=settings.vault_kubernetes_role,
        kubernetes_token_path=settings.vault_kubernetes_token_path,
        namespace=settings.vault_namespace,
        ca_cert=str(settings.vault_cacert) if settings.vault_cacert else None,
        timeout_seconds=settings.vault_timeout,
    )


def build_broker(
    settings: Settings, policy: AccessPolicy, uow: SqlUnitOfWorkFactory
) -> VaultCredentialBroker:
    """The Vault broker, recording each incident token's accessor in our database first."""

    def record_incident_token(incident_id: str, accessor: str) -> None:
        issuing.record_incident_token(
            uow=uow, incident_id=incident_id, accessor=accessor, now=utc_now()
        )

    return VaultCredentialBroker(
        VaultSession(vault_config(settings)),
        incident_policies=[settings.vault_incident_policy, *policy.vault_policies],
        record_incident_token=record_incident_token,
        token_role=settings.vault_token_role,
        wrap_ttl=settings.vault_wrap_ttl,
        clock=utc_now,
    )


def build_sinks(settings: Settings) -> list[WebhookSink | SplunkHecSink]:
    """The configured audit sinks. None configured: nothing is exported, no cursor is kept."""
    missing = settings.missing_for_sinks()
    if missing:
        raise NotReady(
            f"An audit sink is configured without its secret: {', '.join(missing)} not set "
            "(see deploy/.env.example)."
        )
    sinks: list[WebhookSink | SplunkHecSink] = []
    if settings.audit_webhook_url and settings.audit_webhook_secret:
        secret = settings.audit_webhook_secret.get_secret_value()
        sinks.append(WebhookSink(settings.audit_webhook_url, secret))
    if settings.splunk_hec_url and settings.splunk_hec_token:
        sinks.append(
            SplunkHecSink(
                settings.splunk_hec_url,
                settings.splunk_hec_token.get_secret_value(),
                index=settings.splunk_hec_index,
                source=settings.splunk_hec_source,
            )
        )
    return sinks


def build(settings: Settings) -> Gatehouse:
    """Load the policy, connect the database and Vault; refuse a database behind migrations."""
    policy = load_policy(settings.policy_path)
    sinks = build_sinks(settings)
    current = migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    if current != head:
        raise NotReady(
            f"The database is at {current or 'no revision'}, not {head}: "
            "run `gatehouse db upgrade` (make run does it for you)."
        )
    engine = create_engine_for(settings.database_url)
    uow = SqlUnitOfWorkFactory(engine)
    return Gatehouse(settings, policy, engine, uow, build_broker(settings, policy, uow), sinks)


def build_oncall(settings: Settings, directory: Directory) -> PagerDutyOnCall | None:
    """PagerDuty on-call lookups, when GATEHOUSE_PAGERDUTY_TOKEN is set."""
    if settings.pagerduty_token is None:
        return None
    return PagerDutyOnCall(
        token=settings.pagerduty_token.get_secret_value(),
        directory=directory,
        base_url=settings.pagerduty_api_url,
        timeout=settings.pagerduty_timeout,
    )


def build_lookups(settings: Settings) -> tuple[SlackDirectory | None, PagerDutyOnCall | None]:
    """Slack user groups and PagerDuty on-call, as far as the settings allow (for the CLI)."""
    if settings.slack_bot_token is None:
        return None, None
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    directory = SlackDirectory(client)
    return directory, build_oncall(settings, directory)


ExpiryScheduler = Callable[[str, datetime], None]


def slack_deps(
    gatehouse: Gatehouse, client: WebClient, schedule_expiry: ExpiryScheduler | None = None
) -> Deps:
    directory = SlackDirectory(client)
    deps = Deps(
        uow=gatehouse.uow,
        policy=gatehouse.policy,
        broker=gatehouse.broker,
        chat=SlackChat(client),
        clock=utc_now,
        vault_addr=gatehouse.settings.vault_addr,
        directory=directory,
        oncall=build_oncall(gatehouse.settings, directory),
    )
    if schedule_expiry is not None:
        deps.schedule_expiry = schedule_expiry
    return deps


def readiness(gatehouse: Gatehouse) -> dict[str, str]:
    """What keeps this replica from serving: {} when the database and Vault answer."""
    problems: dict[str, str] = {}
    try:
        with gatehouse.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as error:
        problems["database"] = type(error).__name__
    if not gatehouse.broker.reachable():
        problems["vault"] = "unreachable"
    return problems


def build_slack_app(
    gatehouse: Gatehouse, *, http: bool, schedule_expiry: ExpiryScheduler | None = None
) -> App:
    """The Bolt app; in HTTP mode the ack is the response and the work runs after it."""
    settings = gatehouse.settings
    assert settings.slack_bot_token is not None
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    return create_app(
        deps=slack_deps(gatehouse, client, schedule_expiry),
        client=client,
        signing_secret=signing_secret,
        process_before_response=http,
    )


def build_web_app(
    gatehouse: Gatehouse, schedule_expiry: ExpiryScheduler | None = None
) -> Starlette:
    """HTTP mode: /slack/events, /healthz, /readyz, /metrics."""
    return create_http_app(
        build_slack_app(gatehouse, http=True, schedule_expiry=schedule_expiry),
        lambda: readiness(gatehouse),
    )


RECONCILE_EVERY_SECONDS = 300
CHECKPOINT_POLL_SECONDS = 5  # signs when 100 events or 60 s have passed
AUDIT_EXPORT_EVERY_SECONDS = 5
LONGEST_GRANT = timedelta(days=366)


def build_jobs(gatehouse: Gatehouse, deps: Deps) -> list[Job]:
    """The periodic work: sweeps (expiry, time-outs, retries, recovery) and reconciliation."""
    jobs = [
        Job(
            "sweep",
            lambda: lifecycle.sweep(deps) + extending.sweep(deps),
            gatehouse.settings.sweep_interval,
        ),
        Job("reconcile", lambda: _reconcile_quietly(gatehouse), RECONCILE_EVERY_SECONDS),
    ]
    key = gatehouse.settings.audit_signing_key
    if key is not None:
        signer = Ed25519Signer(key.get_secret_value())
        jobs.append(
            Job(
                "checkpoint",
                lambda: sign_checkpoint(uow=gatehouse.uow, signer=signer, now=utc_now()),
                CHECKPOINT_POLL_SECONDS,
            )
        )
    if gatehouse.sinks:
        jobs.append(
            Job(
                "audit-export",
                lambda: export_audit_to_sinks(gatehouse.uow, gatehouse.sinks),
                AUDIT_EXPORT_EVERY_SECONDS,
            )
        )
    return jobs


def export_audit_to_sinks(
    uow: UnitOfWorkFactory, sinks: Sequence[AuditSink], clock: Callable[[], datetime] = utc_now
) -> int:
    """One export run: deliver, count, and say loudly when a sink refuses our settings."""
    deliveries = export_audit(uow=uow, sinks=sinks, clock=clock)
    for delivery in deliveries:
        metrics.AUDIT_EXPORT_DELIVERED.labels(delivery.sink).inc(delivery.delivered)
        if delivery.error is None:
            continue
        kind = "misconfigured" if isinstance(delivery.error, SinkMisconfigured) else "unavailable"
        metrics.AUDIT_EXPORT_FAILURES.labels(delivery.sink, kind).inc()
        level = logging.ERROR if kind == "misconfigured" else logging.WARNING
        log.log(
            level,
            "audit export to %s failed (%s, attempt %d, next try %s): %s",
            delivery.sink,
            kind,
            delivery.attempts,
            delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else "now",
            delivery.error.message,
        )
    now = clock()
    backlog = export_backlog(uow=uow, sinks=[sink.name for sink in sinks])
    for sink, waiting in backlog.items():
        metrics.AUDIT_EXPORT_BACKLOG.labels(sink).set(waiting.records)
        metrics.AUDIT_EXPORT_OLDEST_AGE.labels(sink).set(waiting.oldest_age(now).total_seconds())
    return sum(delivery.delivered for delivery in deliveries)


def start(gatehouse: Gatehouse) -> None:
    """Start the periodic work (its first run at once: reconcile, finish what a stopped
    process left) and an expiry timer for every active grant, then serve Slack until stopped."""
    settings = gatehouse.settings
    assert settings.slack_bot_token is not None
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    deps = slack_deps(gatehouse, client)
    scheduler = build_scheduler(build_jobs(gatehouse, deps))
    timers = ExpiryTimers(scheduler, lambda request_id: lifecycle.expire(deps, request_id))
    deps.schedule_expiry = timers.schedule_expiry
    for request_id, ends_at in sweeps.ending_before(
        uow=gatehouse.uow, until=utc_now() + LONGEST_GRANT
    ):
        timers.schedule_expiry(request_id, ends_at)
    scheduler.start()
    if settings.mode == "http":
        uvicorn.run(
            build_web_app(gatehouse, timers.schedule_expiry),
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )
        return
    assert settings.slack_app_token is not None
    app = build_slack_app(gatehouse, http=False, schedule_expiry=timers.schedule_expiry)
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    handler.start()  # type: ignore[no-untyped-call]


def _reconcile_quietly(gatehouse: Gatehouse) -> None:
    report = reconcile_vault(
        uow=gatehouse.uow, policy=gatehouse.policy, inventory=gatehouse.broker, clock=utc_now
    )
    for problem in report.errors:
        log.warning("reconcile: %s", problem)
