"""The HTTP side: a threaded loopback server, fault injection, delays and the call log."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.emulators.loopback import LoopbackHandler, LoopbackServer, Serving

from . import spec
from .common import VaultError, new_token_id
from .core import Revocation, VaultCore
from .pipeline import error_body, handle

REAP_INTERVAL = 0.2
_FAULT_MESSAGES = {
    429: 'request path "{path}": rate limit quota exceeded',
    500: "internal error",
    502: "upstream rate limited",
    503: "Vault is sealed",
}


@dataclass
class RecordedCall:
    method: str
    path: str  # without the /v1/ prefix, query string dropped
    headers: dict[str, str]  # X-Vault-Token redacted
    json: Any  # the parsed body, or None
    query: dict[str, list[str]] = field(default_factory=dict)
    status: int = 0
    client: tuple[str, int] | None = None  # the caller's address and port: its connection


@dataclass
class _Fault:
    remaining: int
    status: int
    path_prefix: str


class _Server(LoopbackServer):
    emulator: VaultEmulator


class _Handler(LoopbackHandler):
    server: _Server
    methods = frozenset({"GET", "PUT", "POST", "DELETE", "LIST", "PATCH"})

    def _serve(self) -> None:
        emulator = self.server.emulator
        raw_body = self.read_body()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not parts.path.startswith("/v1/"):
            status, body = 404, b"404 page not found\n"
            self._send(status, body, content_type="text/plain; charset=utf-8")
            return
        path = parts.path[len("/v1/") :]
        call = emulator._record(self.command, path, dict(self.headers.items()), raw_body, query)
        call.client = (str(self.client_address[0]), int(self.client_address[1]))
        delay = emulator._delay
        if delay:
            time.sleep(delay)
        fault = emulator._take_fault(path)
        if fault is not None:
            message = _FAULT_MESSAGES.get(fault, "injected error").format(path=path)
            status, body = error_body(VaultError(fault, message))
        else:
            status, body = handle(emulator.core, self.command, path, query, headers, raw_body)
        call.status = status
        self._send(status, body)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        if body or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class VaultEmulator:
    """A Vault dev server stand-in for tests: `start()`, point hvac at `url`, `stop()`."""

    def __init__(
        self,
        *,
        root_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        database_detached: bool = False,
    ) -> None:
        self.root_token = root_token or new_token_id()
        self.core = VaultCore(self.root_token, database_detached=database_detached)
        self.host = host
        self.port = port
        self.calls: list[RecordedCall] = []
        self._calls_lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._delay = 0.0
        self._serving: Serving | None = None
        self._reaper: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve on loopback. SpecFilesMissing (one line) first if Vault's OpenAPI document is
        not usable, rather than requests going unchecked."""
        if self._serving is not None:
            return
        spec.load()
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._serving = Serving(server, "vault-emulator")
        self.port = self._serving.port
        self._stopping.clear()
        self._reaper = threading.Thread(target=self._reap_loop, name="vault-reaper", daemon=True)
        self._reaper.start()

    def stop(self) -> None:
        """Stop serving (connections are refused) but keep every token, lease and role."""
        serving, self._serving = self._serving, None
        self._stopping.set()
        if serving is not None:
            serving.stop()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
        self._reaper = None

    def __enter__(self) -> VaultEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, path_prefix: str = "") -> None:
        """The next `count` requests (under `path_prefix`) get `status` with Vault's error body."""
        with self._calls_lock:
            self._faults.append(_Fault(count, status, path_prefix.lstrip("/")))

    def set_delay(self, seconds: float) -> None:
        """Answer every request `seconds` late, as a network round trip to Vault would."""
        self._delay = seconds

    def advance_clock(self, seconds: float) -> None:
        """Move time forward and expire what is now due, before returning."""
        self.core.clock.advance(seconds)
        self.core.reap()

    def reap(self) -> None:
        self.core.reap()

    def requests_by_path(self) -> Counter[str]:
        """How many requests each path was sent so far (as recorded: no query string)."""
        with self._calls_lock:
            return Counter(call.path for call in self.calls)

    def revocations(self) -> list[Revocation]:
        """Every revocation so far, in order: asked for by callers (also of what was already
        gone), and Vault's own (a TTL ran out, a parent token was revoked)."""
        with self.core.lock:
            return list(self.core.revocations)

    # -- internals ------------------------------------------------------------------------

    def _reap_loop(self) -> None:
        while not self._stopping.wait(REAP_INTERVAL):
            try:
                self.core.reap()
            except Exception:
                continue

    def _take_fault(self, path: str) -> int | None:
        with self._calls_lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    status = fault.status
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return status
        return None

    def _record(
        self, method: str, path: str, headers: dict[str, str], raw: bytes,
        query: dict[str, list[str]],
    ) -> RecordedCall:  # fmt: skip
        shown = {
            k: ("<redacted>" if k.lower() == "x-vault-token" else v) for k, v in headers.items()
        }
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode(errors="replace")
        call = RecordedCall(method=method, path=path, headers=shown, json=body, query=query)
        with self._calls_lock:
            self.calls.append(call)
        return call


@contextmanager
def running_vault(**kwargs: Any) -> Iterator[VaultEmulator]:
    """A started emulator, stopped afterwards: `with running_vault() as vault: ...`."""
    emulator = VaultEmulator(**kwargs)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
