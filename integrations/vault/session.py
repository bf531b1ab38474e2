"""The bot's own Vault session: authentication, renewal, timeouts, retries, error mapping.

hvac talks HTTP; this module decides what a failure means. Connection errors, 429 and 5xx are
retried with backoff and then reported as CredentialUnavailable (worth retrying later); 403 as
CredentialDenied naming the path; 400/404 as CredentialRejected with Vault's own words.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import hvac
import hvac.exceptions
import requests
import requests.adapters

from bot.domain.errors import (
    CredentialDenied,
    CredentialError,
    CredentialRejected,
    CredentialUnavailable,
)
from bot.metrics import VAULT_CALLS, VAULT_ERRORS, vault_path_label

T = TypeVar("T")

AuthMethod = Literal["token", "approle", "kubernetes"]

VAULT_CONNECTIONS = 32
"""How many requests the bot's client keeps connections for at once: a close confirms its
grants this many at a time, each thread on a kept connection rather than a new one."""


@dataclass(frozen=True)
class VaultConfig:
    """How to reach Vault and log in. Built from settings by the composition root."""

    address: str
    auth: AuthMethod = "token"
    token: str | None = field(default=None, repr=False)
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    approle_mount: str = "approle"
    kubernetes_role: str | None = None
    kubernetes_token_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    kubernetes_mount: str = "kubernetes"
    namespace: str | None = None
    ca_cert: str | None = None
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_seconds: float = 0.2
    # Renew the bot's token once less than this share of its TTL is left.
    renew_fraction: float = 1 / 3


_RETRYABLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
)


class VaultSession:
    """One authenticated hvac client for the bot, renewed before its token runs out."""

    def __init__(
        self,
        config: VaultConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._http = _pooled_http(config)
        self._client = self.new_client(token=None)
        self._token_expires_at: float | None = None
        self._token_ttl = 0.0
        self._login_lock = threading.Lock()

    def new_client(self, *, token: str | None) -> hvac.Client:
        """A client with our address, namespace, CA and timeout, acting as `token`.

        Every client shares this session's connections (hvac sends the token and namespace as
        headers of each request), so a grant's token and the credential read under it reuse
        one kept-alive connection instead of each opening its own (a TLS handshake is a round
        trip or two to a Vault that may be far away)."""
        return hvac.Client(
            url=self.config.address,
            token=token,
            timeout=self.config.timeout_seconds,
            namespace=self.config.namespace,
            session=self._http,
        )

    @property
    def client(self) -> hvac.Client:
        """The bot's client, logged in and renewed as needed (once, however many threads ask)."""
        with self._login_lock:
            if self._token_expires_at is None:
                self.login()
            elif self._should_renew():
                self._renew_or_login()
        return self._client

    def login(self) -> None:
        """Authenticate with the configured method and note when the token expires."""
        config = self.config
        if config.auth == "token":
            if not config.token:
                raise CredentialDenied("VAULT_TOKEN is not set, so Gatehouse cannot use Vault.")
            self._client.token = config.token
            data = self.call(
                "look up the bot's token", lambda: self._client.auth.token.lookup_self()
            )
            self._note_ttl(int(data["data"].get("ttl") or 0))
            return
        if config.auth == "approle":
            response = self.call(
                "log in with AppRole",
                lambda: self._client.auth.approle.login(
                    role_id=config.role_id,
                    secret_id=config.secret_id,
                    mount_point=config.approle_mount,
                ),
            )
        else:
            jwt = config.kubernetes_token_path.read_text(encoding="utf-8").strip()
            response = self.call(
                "log in with Kubernetes",
                lambda: self._client.auth.kubernetes.login(
                    role=config.kubernetes_role, jwt=jwt, mount_point=config.kubernetes_mount
                ),
            )
        self._note_ttl(int(response["auth"].get("lease_duration") or 0))

    def _note_ttl(self, ttl: int) -> None:
        """A TTL of 0 means a token that never expires (root, or a periodic-less static token)."""
        self._token_ttl = float(ttl)
        self._token_expires_at = self._monotonic() + ttl if ttl else float("inf")

    def _should_renew(self) -> bool:
        assert self._token_expires_at is not None
        if self._token_expires_at == float("inf"):
            return False
        left = self._token_expires_at - self._monotonic()
        return left < self._token_ttl * self.config.renew_fraction

    def _renew_or_login(self) -> None:
        try:
            response = self.call(
                "renew the bot's token", lambda: self._client.auth.token.renew_self()
            )
            self._note_ttl(int(response["auth"].get("lease_duration") or 0))
        except CredentialError:
            self.login()  # renewal refused (max TTL reached, token revoked): log in again

    def call(
        self,
        what: str,
        action: Callable[[], T],
        *,
        path: str = "",
        capability: str = "update",
        as_bot: bool = False,
    ) -> T:
        """Run one Vault call with retries; translate its failure into a domain error.

        `as_bot`: the call uses the bot's own token, so a 403 may mean that token was revoked
        or expired early; log in once more and try again before giving up.
        """
        label = vault_path_label(path)
        with VAULT_CALLS.labels(label).time():
            try:
                return self._call(what, action, path=path, capability=capability, as_bot=as_bot)
            except CredentialError as error:
                VAULT_ERRORS.labels(label, type(error).__name__).inc()
                raise

    def _call(
        self, what: str, action: Callable[[], T], *, path: str, capability: str, as_bot: bool
    ) -> T:
        delay = self.config.backoff_seconds
        logged_in_again = False
        for attempt in range(1, self.config.attempts + 1):
            try:
                return action()
            except hvac.exceptions.Forbidden:
                if as_bot and not logged_in_again and self.config.auth != "token":
                    logged_in_again = True
                    self.login()
                    continue
                whose = "the bot's" if as_bot else "the token's"
                where = f" on {path}" if path else ""
                raise CredentialDenied(
                    f"Vault denied permission to {what}: {whose} Vault policy lacks the "
                    f"'{capability}' capability{where} (see deploy/vault/policies/)."
                ) from None
            except _RETRYABLE as error:
                if attempt == self.config.attempts:
                    raise CredentialUnavailable(
                        f"Vault is unavailable ({_describe(error)}) when trying to {what}; "
                        "Gatehouse will retry."
                    ) from None
                self._sleep(delay)
                delay *= 2
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as error:
                raise CredentialRejected(
                    f"Vault rejected the request to {what}: {_describe(error)}"
                ) from None
            except hvac.exceptions.VaultError as error:
                raise CredentialUnavailable(
                    f"Vault failed to {what} ({_describe(error)}); Gatehouse will retry."
                ) from None
        raise AssertionError("unreachable")


def _describe(error: Exception) -> str:
    """Vault's own error words when it gave some, else the kind of failure. Never a token."""
    if isinstance(error, hvac.exceptions.VaultError):
        words = ", ".join(error.errors or []) if error.errors else ""
        return words or type(error).__name__
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    return "connection refused" if "refused" in str(error).lower() else "connection failed"


def _pooled_http(config: VaultConfig) -> requests.Session:
    http = requests.Session()
    http.verify = config.ca_cert if config.ca_cert else True
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=VAULT_CONNECTIONS)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http
