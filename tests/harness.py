"""Run the real bot in HTTP mode on a loopback port, for end-to-end tests, the demo and benches."""

import hashlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bot import bootstrap
from bot.app.deps import Deps
from bot.config import Settings
from bot.store import migrate

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = REPO / "deploy" / "policy.example.yaml"
# The example plus approvers from PagerDuty and a Slack user group.
ONCALL_EXAMPLE_POLICY = REPO / "deploy" / "policy.oncall.example.yaml"
ARCHIVE_AFTER = "  archive_after: 24h"


def archiving_at_once(policy: Path) -> Path:
    """`policy` (an example) with `incident.archive_after: 0`, in a file of its own: tests
    that follow a close to its end see the channel archived without waiting a day (the wait
    itself has tests of its own)."""
    text = policy.read_text(encoding="utf-8")
    assert ARCHIVE_AFTER in text, f"{policy} no longer says {ARCHIVE_AFTER.strip()!r}"
    text = text.replace(ARCHIVE_AFTER, "  archive_after: 0")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "gatehouse-test-policies"
    folder.mkdir(exist_ok=True)
    target = folder / f"{policy.stem}-archive-at-once-{digest}.yaml"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    return target


@dataclass
class RunningBot:
    url: str
    gatehouse: bootstrap.Gatehouse
    deps: Deps  # what the listeners use: for tests that drive the sweeps themselves

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"


def bot_settings(**values: Any) -> Settings:
    """Settings from explicit values only: no environment, no .env."""
    defaults: dict[str, Any] = {"policy_path": archiving_at_once(EXAMPLE_POLICY), "mode": "http"}
    return Settings(_env_file=None, **{**defaults, **values})


@contextmanager
def running_gatehouse(settings: Settings) -> Iterator[RunningBot]:
    """Migrate, build and serve the bot like `gatehouse run` in HTTP mode, on a free port."""
    migrate.upgrade(settings.database_url)
    gatehouse = bootstrap.build(settings)
    # The scheduler is not started: the tests drive the sweeps themselves.
    slack_bot = bootstrap.assemble(gatehouse)
    web = bootstrap.build_web_app(gatehouse, slack_bot.app)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the bot did not start serving within 10 s")
        time.sleep(0.01)
    try:
        yield RunningBot(f"http://127.0.0.1:{port}", gatehouse, slack_bot.deps)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
        gatehouse.engine.dispose()
