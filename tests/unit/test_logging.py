"""Logs carry no secret, whatever its shape and whoever logs it."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot.log_setup import configure_logging, redact_text

SECRETS = [
    "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",  # Slack bot token
    "xoxp-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",  # Slack user token
    "xapp-1-A0123456789-1234567890123-abcdef0123456789",  # Slack app-level token
    "hvs.CAESIJ9Vq8kq3v0v8k2l5ZlN0wEXAMPLEexampleAbCdEf",  # Vault service token
    "hvb.AAAAAQJXexampleEXAMPLEexampleEXAMPLE",  # Vault batch token
    "s.AbCdEfGhIjKlMnOpQrStUvWx",  # Vault token, old format
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLWV4YW1wbGU",  # JWT
]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG")
    root = logging.getLogger()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    structlog.reset_defaults()
    root.handlers.clear()


@pytest.mark.parametrize("secret", SECRETS)
def test_every_token_shape_is_redacted_in_text(secret: str) -> None:
    assert secret not in redact_text(f"got {secret} from somewhere")


def test_passwords_in_urls_and_assignments_are_redacted() -> None:
    text = redact_text(
        "postgresql://vault:Sup3r-S3cret@db:5432/ml password=Hunter2! "
        '{"secret_id": "0f1e2d3c-aaaa", "password": "A1a-xxxxxxxxxxxxxxxx"}'
    )
    for secret in ("Sup3r-S3cret", "Hunter2!", "0f1e2d3c-aaaa", "A1a-xxxxxxxxxxxxxxxx"):
        assert secret not in text
    assert "postgresql://vault:[redacted]@db:5432/ml" in text


def test_splunk_hec_authorization_values_are_redacted() -> None:
    text = redact_text("sent Authorization: Splunk 0d7c1c4e-7d1f-4a35-9b1e-4b8f2f0c9e11 to HEC")
    assert "0d7c1c4e" not in text and "Splunk [redacted]" in text
    assert redact_text("Splunk HEC answered 503") == "Splunk HEC answered 503"


def test_private_keys_are_redacted() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nxyz\n-----END RSA PRIVATE KEY-----"
    assert "MIIEow" not in redact_text(f"loaded {key} ok")


def test_structlog_and_library_logs_are_json_lines_without_secrets(captured: io.StringIO) -> None:
    log = structlog.get_logger("gatehouse.test")
    with structlog.contextvars.bound_contextvars(incident_id="INC-1", request_id="R-1"):
        log.info("issued", wrapping_token=SECRETS[3], lease_id="database/creds/x/abc")
    logging.getLogger("hvac.adapters").warning("call failed for token %s", SECRETS[3])
    logging.getLogger("somewhere").info("connecting with %s", "postgresql://u:pw123456@h/db")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert lines[0]["event"] == "issued"
    assert lines[0]["incident_id"] == "INC-1" and lines[0]["request_id"] == "R-1"
    assert lines[0]["lease_id"] == "database/creds/x/abc"
    text = captured.getvalue()
    assert SECRETS[3] not in text and "pw123456" not in text
    assert all("timestamp" in line and "level" in line for line in lines)


def test_library_debug_logs_stay_off_even_at_debug(captured: io.StringIO) -> None:
    for name in ("slack_bolt.App", "slack_sdk.web.base_client", "urllib3.connectionpool"):
        logging.getLogger(name).debug("Received the following request body: payload=...")
    assert "request body" not in captured.getvalue()


def test_bolts_info_line_with_a_refused_body_stays_off(captured: io.StringIO) -> None:
    """Bolt logs a request that fails its signature check, body included, at INFO."""
    logging.getLogger("slack_bolt.RequestVerification").info(
        "Invalid request signature detected (signature: v0=0, timestamp: 1, body: payload=...)"
    )
    logging.getLogger("slack_bolt.App").warning("a Bolt warning still shows")
    assert "Invalid request signature" not in captured.getvalue()
    assert "a Bolt warning still shows" in captured.getvalue()


def test_http_client_request_lines_with_urls_stay_off(captured: io.StringIO) -> None:
    logging.getLogger("httpx").info(
        'HTTP Request: GET https://api.pagerduty.com/users?query=ada%40example.com "HTTP/1.1 200"'
    )
    logging.getLogger("httpx").warning("a warning still shows")
    assert "ada%40example.com" not in captured.getvalue()
    assert "a warning still shows" in captured.getvalue()


def test_a_level_bolt_copied_onto_its_own_logger_does_not_override_the_floor() -> None:
    """Bolt sets `slack_bolt.<Class>` to the root's level when it builds one without a base
    logger: at DEBUG that child would log request bodies, at ERROR it would hide warnings."""
    child = logging.getLogger("slack_bolt.RequestVerification")
    child.setLevel(logging.DEBUG)  # what Bolt does under a DEBUG root
    try:
        configure_logging(json=True, level="DEBUG")
        assert child.getEffectiveLevel() == logging.WARNING
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
