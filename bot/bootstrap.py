"""Composition root: the one place that builds engine, policy, Vault and services from settings.

Nothing happens at import time; `build` does the work when a command asks for it.
"""

import logging
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.error import URLError

import requests
import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette

from bot import metrics
from bot.app import extending, lifecycle
from bot.app.deps import Deps
from bot.config import Problem, Settings, settings_problems
from bot.domain.errors import (
    CredentialDenied,
    CredentialError,
    CredentialUnavailable,
    SinkMisconfigured,
)
from bot.domain.ports import AuditSink, Directory, IncidentTokenLedger, UnitOfWorkFactory
from bot.domain.rules import AccessPolicy
from bot.log_setup import redact_text
from bot.policy import PolicyError, load_policy
from bot.scheduler import ExpiryTimers, Job, add_jobs, build_scheduler
from bot.services import sweeps
from bot.services.audit_export import export_audit, export_backlog
from bot.services.checkpoints import sign_checkpoint
from bot.services.issuing import StoredIncidentTokens
from bot.services.sweeps import reconcile_vault
from bot.slack.app import create_app
from bot.slack.edge import SlackEdge
from bot.slack.http import create_http_app
from bot.slack.installation import learn_installation
from bot.slack.metadata import MetadataSeal
from bot.slack.views import SlackViews
from bot.store import SqlUnitOfWorkFactory, create_engine_for, migrate
from bot.store.replays import SqlSeenRequests
from integrations.audit_signing import Ed25519Signer
from integrations.oncall import PagerDutyOnCall
from integrations.sinks import SplunkHecSink, WebhookSink
from integrations.slack_web import SlackChat, SlackDirectory, make_web_client
from integrations.ttl_cache import TtlCache
from integrations.vault import VaultConfig, VaultCredentialBroker, VaultSession

log = logging.getLogger(__name__)


class NotReady(Exception):
    """Something must be fixed before the bot can start; the message says what."""


class StartFailure(Exception):
    """A known reason the bot cannot start (Slack, Vault or the database refused or did not
    answer), in one line: the cause, then the fix."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
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
    settings: Settings,
    policy: AccessPolicy,
    ledger: IncidentTokenLedger,
    session: VaultSession | None = None,
) -> VaultCredentialBroker:
    """The Vault broker, putting each incident token's accessor in `ledger` before using it.
    `session`: one already logged in (at start), else a new one that logs in when first used."""
    return VaultCredentialBroker(
        session or VaultSession(vault_config(settings)),
        incident_policies=[settings.vault_incident_policy, *policy.vault_policies],
        ledger=ledger,
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


def build(settings: Settings, *, vault: VaultSession | None = None) -> Gatehouse:
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
    broker = build_broker(settings, policy, StoredIncidentTokens(uow, utc_now), vault)
    return Gatehouse(settings, policy, engine, uow, broker, sinks)


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


def slack_deps(
    gatehouse: Gatehouse, client: WebClient, schedule_expiry: Callable[[str, datetime], None]
) -> Deps:
    """The workflows' dependencies: `client` is the one Slack client of the process, and
    `schedule_expiry` arms the expiry timers."""
    directory = SlackDirectory(client)
    return Deps(
        views=SlackViews(),
        uow=gatehouse.uow,
        policy=gatehouse.policy,
        broker=gatehouse.broker,
        chat=SlackChat(client),
        clock=utc_now,
        vault_addr=gatehouse.settings.vault_addr,
        directory=directory,
        oncall=build_oncall(gatehouse.settings, directory),
        schedule_expiry=schedule_expiry,
        seal=metadata_seal(gatehouse.settings),
    )


def metadata_seal(settings: Settings) -> MetadataSeal:
    """The forms' metadata key, from a secret every replica has: the signing secret in HTTP
    mode, the app-level token in Socket Mode (which has no signing secret)."""
    secret = settings.slack_signing_secret if settings.mode == "http" else settings.slack_app_token
    if secret is None:  # the settings check refuses this before anything is built
        raise StartFailure("no secret to sign Slack forms with: set SLACK_SIGNING_SECRET")
    return MetadataSeal(secret.get_secret_value())


def readiness(gatehouse: Gatehouse) -> dict[str, str]:
    """What keeps this replica from taking Slack traffic: {} when the database answers and the
    policy is loaded. Vault is not asked: while it is down or sealed the bot still answers
    (requests are approved and delivered when Vault is back), so taking every replica out of
    the Service would only trade our clear answer for Slack's own error."""
    problems: dict[str, str] = {}
    try:
        with gatehouse.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as error:
        problems["database"] = type(error).__name__
    if not gatehouse.policy.resources:
        problems["policy"] = "no resources loaded"
    return problems


VAULT_HEALTH_CACHE_SECONDS = 10.0


def health_details(gatehouse: Gatehouse) -> Callable[[], dict[str, str]]:
    """/healthz's details: Vault's state (active, standby, sealed, uninitialized, unreachable),
    asked at most every 10 s whatever the probe rate, and set on the gatehouse_vault_state
    metric by the same call."""
    cache: TtlCache[str] = TtlCache(VAULT_HEALTH_CACHE_SECONDS)

    def details() -> dict[str, str]:
        return {"vault": cache.get("vault", gatehouse.broker.health)}

    return details


@dataclass(frozen=True)
class SlackBot:
    """What `gatehouse run` serves, each part built once by `assemble`. Nothing runs until
    `start` starts the scheduler and serves the app."""

    deps: Deps
    app: App
    scheduler: BackgroundScheduler
    timers: ExpiryTimers


def assemble(gatehouse: Gatehouse) -> SlackBot:
    """The Slack side, in dependency order: one Slack client (the installation it names first,
    so a wrong team or app fails before anything else is built), the scheduler and its expiry
    timers, the workflows' dependencies, the periodic jobs, the Bolt app. The ack is
    answered before the work that follows it runs."""
    settings = gatehouse.settings
    assert settings.slack_bot_token is not None
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        installation = learn_installation(
            client, team_id=settings.slack_team_id, app_id=settings.slack_app_id
        )
    except ValueError as error:
        raise StartFailure(f"Slack named no usable installation: {error}") from None

    def expire(request_id: str) -> None:
        # `deps` is built just below; no timer fires before the scheduler starts.
        lifecycle.expire(deps, request_id)

    scheduler = build_scheduler()
    timers = ExpiryTimers(scheduler, expire)
    deps = slack_deps(gatehouse, client, timers.schedule_expiry)
    add_jobs(scheduler, build_jobs(gatehouse, deps))
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = create_app(
        deps=deps,
        client=client,
        signing_secret=signing_secret,
        # In both modes: the ack function (which commits what the answer promises) returns
        # before Slack is answered and before the lazy functions start; Socket Mode otherwise
        # runs the two side by side and answers as soon as ack() is called.
        process_before_response=True,
        installation=installation,
    )
    return SlackBot(deps=deps, app=app, scheduler=scheduler, timers=timers)


def build_web_app(gatehouse: Gatehouse, app: App) -> Starlette:
    """HTTP mode: `app` at /slack/events (behind the edge), /healthz, /readyz, /metrics."""
    secret = gatehouse.settings.slack_signing_secret
    assert secret is not None  # settings_problems requires it in HTTP mode
    edge = SlackEdge(secret.get_secret_value(), SqlSeenRequests(gatehouse.engine))
    return create_http_app(
        app, lambda: readiness(gatehouse), edge=edge, details=health_details(gatehouse)
    )


RECONCILE_EVERY_SECONDS = 300
VAULT_HEALTH_EVERY_SECONDS = 30
CHECKPOINT_POLL_SECONDS = 5  # signs when 100 events or 60 s have passed
AUDIT_EXPORT_EVERY_SECONDS = 5
# Carries out what any replica recorded and nobody has followed yet (a dead replica's last
# changes, or one busy elsewhere): Slack, Vault's revocations and renewals, the expiry timers;
# and stores the followers' progress. At least as often as the sweep.
NOTIFY_EVERY_SECONDS = 2
LONGEST_GRANT = timedelta(days=366)


def notify_and_save(deps: Deps) -> None:
    deps.notify()
    if deps.follower is not None:
        deps.follower.save_progress()


def build_jobs(gatehouse: Gatehouse, deps: Deps) -> list[Job]:
    """The periodic work: sweeps (expiry, time-outs, retries, recovery) and reconciliation."""
    jobs = [
        Job(
            "sweep",
            lambda: lifecycle.sweep(deps) + extending.sweep(deps),
            gatehouse.settings.sweep_interval,
        ),
        Job(
            "notify",
            lambda: notify_and_save(deps),
            min(NOTIFY_EVERY_SECONDS, gatehouse.settings.sweep_interval),
        ),
        Job("reconcile", lambda: reconcile_and_log(gatehouse), RECONCILE_EVERY_SECONDS),
        # Keeps gatehouse_vault_state current in Socket Mode too, where no probe asks /healthz.
        Job("vault-health", lambda: gatehouse.broker.health(), VAULT_HEALTH_EVERY_SECONDS),
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
    process left) and an expiry timer for every active grant, then serve Slack until SIGTERM
    or SIGINT; then stop serving and the periodic work, and return."""
    settings = gatehouse.settings
    http = settings.mode == "http"
    listener = listen(settings.host, settings.port) if http else None
    stop = _stop_on_signals()
    bot = assemble(gatehouse)
    # Before anything is recorded here: a follower new in this release starts at the chain's
    # head (its timers are the ones armed just below, its revocations the sweep's retries).
    if bot.deps.follower is not None:
        bot.deps.follower.start_cursors()
    for request_id, ends_at in sweeps.ending_before(
        uow=gatehouse.uow, until=utc_now() + LONGEST_GRANT
    ):
        bot.timers.schedule_expiry(request_id, ends_at)
    if settings.audit_signing_key is None:
        log.warning(
            "audit checkpoints are not signed: GATEHOUSE_AUDIT_SIGNING_KEY is not set — make a "
            "key with `gatehouse audit keygen` (`gatehouse doctor` fails until it is set)"
        )
    bot.scheduler.start()
    try:
        if listener is not None:
            web = build_web_app(gatehouse, bot.app)
            server = uvicorn.Server(web_server_config(web))
            log.info("%s", started_line(settings))
            if not stop.is_set():
                server.run(sockets=[listener])  # until SIGTERM or SIGINT, which uvicorn takes
        else:
            assert settings.slack_app_token is not None
            handler = SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value())
            handler.connect()  # type: ignore[no-untyped-call]
            log.info("%s", started_line(settings))
            stop.wait()
            handler.close()  # type: ignore[no-untyped-call]
    finally:
        bot.scheduler.shutdown(wait=True)
        gatehouse.engine.dispose()
    log.info("Gatehouse stopped")


# Connections served at once; past it uvicorn answers 503. With the edge's body cap and read
# deadline, unauthenticated clients can hold at most this many 256 KiB buffers for 5 s.
MAX_CONNECTIONS = 512
KEEP_ALIVE_SECONDS = 5


def web_server_config(web: Starlette) -> uvicorn.Config:
    """uvicorn, bounded: how many connections it keeps and how long an idle one stays open."""
    return uvicorn.Config(
        web,
        log_level="warning",
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def started_line(settings: Settings) -> str:
    """What an operator needs to know at start: the mode, where it listens, which database."""
    if settings.mode == "http":
        where = f"HTTP mode, listening on {settings.host}:{settings.port}"
    else:
        where = "Socket Mode, no listening port"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    return f"Gatehouse started: {where}, database {database}"


def listen(host: str, port: int) -> socket.socket:
    """The HTTP mode's listening socket, bound before the start is announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise StartFailure(
            f"Cannot listen on {host}:{port} ({error.strerror or error}) — stop what holds the "
            "port, or set GATEHOUSE_PORT (and GATEHOUSE_HOST) to a free address"
        ) from None
    return listener


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, which then no longer kill the process: the bot stops
    serving and returns, so a clean stop exits 0. (In HTTP mode uvicorn takes the signals while
    it serves and hands them back here after its own shutdown.)"""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    return stop


def reconcile_and_log(gatehouse: Gatehouse) -> None:
    """One run of reconciliation. One outage fails every Vault call of the run with the same
    words (live tokens, then each resource's leases): each distinct problem is logged once."""
    report = reconcile_vault(
        uow=gatehouse.uow, policy=gatehouse.policy, inventory=gatehouse.broker, clock=utc_now
    )
    for problem in dict.fromkeys(report.errors):
        log.warning("reconcile: %s", problem)


# -- before serving: everything that can be checked offline, then what only the network tells --


def preflight(env_file: Path | str | None = ".env") -> tuple[Settings, list[Problem]]:
    """Everything wrong with the settings, the policy file and the audit key, told without
    creating a file or opening a connection. No problem: the bot may try to start."""
    settings, problems = settings_problems(env_file)
    problems += policy_problems(settings.policy_path)
    if settings.audit_signing_key is not None:
        try:
            Ed25519Signer(settings.audit_signing_key.get_secret_value())
        except ValueError:
            problems.append(
                Problem(
                    "GATEHOUSE_AUDIT_SIGNING_KEY",
                    "not an Ed25519 private key in base64",
                    "make one with `gatehouse audit keygen`",
                )
            )
    return settings, problems


def policy_problems(path: Path) -> list[Problem]:
    """One problem per thing wrong with the policy file, as `gatehouse policy check` finds."""
    if not path.is_file():
        return [
            Problem(
                "GATEHOUSE_POLICY",
                f"no policy file at {path}",
                "start from the example (cp deploy/policy.example.yaml policy.yaml) or point "
                "GATEHOUSE_POLICY at your policy",
            )
        ]
    try:
        load_policy(path)
    except PolicyError as error:
        fix = f"correct the policy (`gatehouse policy check {path}` explains each problem)"
        return [
            Problem(
                "GATEHOUSE_POLICY",
                f"{path}: {problem.message}"
                if problem.path == str(path)
                else f"{path}: {problem.path}: {problem.message}",
                fix,
            )
            for problem in error.problems
        ]
    return []


def prepare(settings: Settings, *, upgrade_database: bool = False) -> Gatehouse:
    """Check, in this order, Slack, Vault and the database before anything is served; the
    first that fails raises StartFailure. Nothing is created or migrated until Slack and Vault
    have accepted the bot. `upgrade_database`: migrate to the latest revision (a SQLite file
    is created then, and only then)."""
    check_slack(settings)
    session = open_vault(settings)
    open_database(settings, upgrade=upgrade_database)
    return build(settings, vault=session)


def open_database(settings: Settings, *, upgrade: bool) -> None:
    """The database answers and is at the latest revision (after upgrading it, if asked)."""
    url = settings.database_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    behind = "run `gatehouse db upgrade` (or start with `gatehouse run --migrate`)"
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not upgrade and sqlite_file and not Path(sqlite_file).exists():
        raise StartFailure(f"No database at {sqlite_file} yet — {behind}")
    head = migrate.head_revision()
    try:
        current = migrate.current_revision(url)
        if upgrade and current != head:
            migrate.upgrade(url)
            log.info("database %s upgraded from %s to %s", shown, current or "nothing", head)
            current = head
    except SQLAlchemyError as error:
        cause = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise StartFailure(
            redact_text(
                f"Cannot use the database at {shown} ({cause}) — start the database server, "
                "or correct DATABASE_URL"
            )
        ) from None
    if current != head:
        raise StartFailure(
            f"The database at {shown} is at revision {current or 'none'}, not {head} — {behind}"
        )


def open_vault(settings: Settings) -> VaultSession:
    """Vault answers, is unsealed, and accepts the bot's login: the session, logged in."""
    config = vault_config(settings)
    session = VaultSession(config)
    address = config.address
    try:
        health = session.new_client(token=None).sys.read_health_status(
            method="GET", standby_ok=True
        )
    except requests.exceptions.RequestException as error:
        raise StartFailure(
            f"Vault at {address} is unreachable ({_vault_network_cause(error)}) — start Vault, "
            "or correct VAULT_ADDR (and VAULT_CACERT for a private CA)"
        ) from None
    status = health.status_code if isinstance(health, requests.Response) else 200
    if status == 503 or (isinstance(health, dict) and health.get("sealed")):
        raise StartFailure(
            f"Vault at {address} is sealed — unseal it (vault operator unseal), then start "
            "Gatehouse again"
        )
    if status == 501:
        raise StartFailure(
            f"Vault at {address} is not initialized — initialize and unseal it "
            "(vault operator init), then set Vault up (deploy/vault/README.md)"
        )
    try:
        session.login()
    except CredentialUnavailable as error:
        cause = error.message.removesuffix("; Gatehouse will retry.")
        raise StartFailure(
            f"{cause} — check that Vault at {address} is up and unsealed (vault status), then "
            "start Gatehouse again"
        ) from None
    except CredentialError as error:
        raise StartFailure(_vault_refused(settings, error)) from None
    except OSError as error:
        raise StartFailure(
            f"Cannot read the Kubernetes service account token "
            f"{settings.vault_kubernetes_token_path} ({error.strerror or error}) — mount it, "
            "or set GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH"
        ) from None
    return session


def _vault_refused(settings: Settings, error: CredentialError) -> str:
    cause = (
        "permission denied"
        if isinstance(error, CredentialDenied)
        else error.message.partition(": ")[2] or error.message
    )
    if settings.vault_auth == "token":
        return (
            f"Vault refused VAULT_TOKEN ({cause}) — set VAULT_TOKEN to a valid, unexpired token "
            "of the bot, or log in with GATEHOUSE_VAULT_AUTH=approle (deploy/vault/README.md)"
        )
    if settings.vault_auth == "approle":
        return (
            f"Vault refused the AppRole login ({cause}) — check GATEHOUSE_VAULT_ROLE_ID and "
            "GATEHOUSE_VAULT_SECRET_ID (deploy/vault/setup.sh prints them; a secret id may "
            "have expired)"
        )
    return (
        f"Vault refused the Kubernetes login as {settings.vault_kubernetes_role} ({cause}) — "
        "create that role, bound to this pod's service account (deploy/k8s/README.md)"
    )


def _vault_network_cause(error: requests.exceptions.RequestException) -> str:
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.SSLError):
        return "its TLS certificate is not trusted"
    return "connection refused" if "refused" in str(error).lower() else "connection failed"


_SLACK_TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


def check_slack(settings: Settings) -> None:
    """Slack answers and accepts the bot token, and in Socket Mode the app-level token."""
    assert settings.slack_bot_token is not None
    bot = _probe_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        bot.auth_test()
    except SlackApiError as error:
        code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
        if code in _SLACK_TOKEN_REFUSED:
            raise StartFailure(
                f"Slack refused SLACK_BOT_TOKEN ({code}) — copy the Bot User OAuth Token "
                "(xoxb-…) from the app's OAuth & Permissions page; reinstall the app to the "
                "workspace if it was removed"
            ) from None
        raise StartFailure(
            f"Slack answered auth.test with {code} — try again; if it lasts, see status.slack.com"
        ) from None
    except (SlackRequestError, OSError) as error:
        raise StartFailure(
            f"Slack is unreachable at {bot.base_url} ({_network_cause(error)}) — check the "
            "network and any proxy (HTTPS_PROXY), or GATEHOUSE_SLACK_API_URL"
        ) from None
    if settings.mode != "socket":
        return
    assert settings.slack_app_token is not None
    app_token = settings.slack_app_token.get_secret_value()
    try:
        _probe_client(app_token, settings.slack_api_url).apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
        raise StartFailure(
            f"Slack refused SLACK_APP_TOKEN for Socket Mode ({code}) — in the Slack app, turn "
            "Socket Mode on and generate an app-level token with connections:write (Basic "
            "Information → App-Level Tokens), or serve HTTP with GATEHOUSE_MODE=http"
        ) from None
    except (SlackRequestError, OSError) as error:
        raise StartFailure(
            f"Slack is unreachable for Socket Mode ({_network_cause(error)}) — check the "
            "network and any proxy (HTTPS_PROXY)"
        ) from None


def _probe_client(token: str, base_url: str | None) -> WebClient:
    """A WebClient for the checks at start: few retries, and its failures are not logged
    (the check reports them, in one line)."""
    client = WebClient(
        token=token,
        base_url=(base_url.rstrip("/") + "/") if base_url else WebClient.BASE_URL,
        timeout=10,
        logger=_unlogged(),
    )
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=1),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=1),
    ]
    return client


@cache
def _unlogged() -> logging.Logger:
    logger = logging.getLogger("gatehouse.start.probe")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


def _network_cause(error: Exception) -> str:
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason) or type(reason).__name__
