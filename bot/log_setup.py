"""Logs: one event per line, JSON in production, readable in a terminal, never a secret.

Every record, Gatehouse's own (structlog) and the libraries' (stdlib logging: Bolt, slack_sdk,
hvac, uvicorn), goes through the same processors, the last of which redacts anything shaped
like a credential.
"""

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Shapes of every secret Gatehouse handles, and what each match becomes.
_WHOLE = [
    r"\bxox[abposr]-[A-Za-z0-9-]{6,}",  # Slack bot, user and refresh tokens
    r"\bxapp-[A-Za-z0-9-]{6,}",  # Slack app-level tokens
    r"\bhv[sbr]\.[A-Za-z0-9_-]{16,}",  # Vault service, batch and recovery tokens
    r"\bs\.[A-Za-z0-9]{24}\b",  # Vault tokens of the old format
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",  # PEM keys
]
SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    *((re.compile(pattern, re.S), "[redacted]") for pattern in _WHOLE),
    (re.compile(r"(?<=://)([^:/@\s]+):[^@/\s]+(?=@)"), r"\1:[redacted]"),  # URL passwords
    (re.compile(r"\b(Splunk\s+)[A-Za-z0-9-]{16,}"), r"\1[redacted]"),  # HEC Authorization values
    (
        re.compile(
            r"(?i)\b((?:password|passwd|secret_id|secret|client_token|token)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;&}]+"
        ),
        r"\1[redacted]",
    ),
]
SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|authorization|credential)")
REDACTED = "[redacted]"
QUIET_LIBRARIES = ("slack_bolt", "slack_sdk", "urllib3", "hvac", "httpx", "httpcore")
# Their INFO lines carry full URLs, and PagerDuty lookups put an e-mail address in the query.
URL_LOGGING_LIBRARIES = ("httpx", "httpcore")
BODY_AT_INFO_LIBRARIES = (*URL_LOGGING_LIBRARIES, "slack_bolt")
# Their INFO lines narrate routine work (each scheduled job run, each migration context): the
# bot logs what matters itself (a job that fails, a database upgraded at start).
CHATTY_LIBRARIES = ("apscheduler", "alembic")


def redact_text(text: str) -> str:
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    """Redact a value of any shape; values under secret-sounding keys go entirely."""
    if key and SECRET_KEYS.search(key) and value not in (None, "", True, False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact(v) for v in value]
    return value


def redact_processor(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger"):
            continue
        event_dict[key] = redact(event_dict[key], "" if key == "event" else key)
    return event_dict


def configure_logging(*, json: bool | None = None, level: str = "INFO") -> None:
    """Route stdlib logging and structlog through one pipeline that ends in redaction."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        # Their DEBUG logs carry request and response bodies: never below INFO. Bolt's INFO
        # line on a bad signature carries the whole body: never below WARNING.
        floor = logging.WARNING if name in BODY_AT_INFO_LIBRARIES else logging.INFO
        logging.getLogger(name).setLevel(max(floor, root.level))
        _defer_to(name)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
        _defer_to(name)


def _defer_to(library: str) -> None:
    """The library's loggers below `library` take its level: Bolt copies a level onto its own
    loggers when it builds them (the root's, or its base logger's), which would otherwise
    override the floor set here, in either direction."""
    prefix = library + "."
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith(prefix) and isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)
