"""The Slack app manifest grants exactly the bot scopes the code's Web API calls need."""

import json
import re
from pathlib import Path

import yaml

from bot.cli.doctor import BOT_SCOPES

REPO = Path(__file__).resolve().parents[3]
METHODS = REPO / "tests" / "specs" / "slack" / "methods"
MANIFEST = REPO / "deploy" / "slack-app-manifest.yaml"
# slack_sdk helpers that stand for several Web API methods.
EXPANSIONS = {"files.upload.v2": ["files.getUploadURLExternal", "files.completeUploadExternal"]}
NOT_FOR_METHODS = {"commands"}  # slash commands, not a Web API method


def methods_called() -> set[str]:
    """Every Web API method the gateway calls, read from its `self.client.<method>(` calls."""
    source = (REPO / "integrations" / "slack_web.py").read_text()
    found: set[str] = set()
    for name in re.findall(r"self\.client\.(\w+)\(", source):
        method = name.replace("_", ".")
        found.update(EXPANSIONS.get(method, [method]))
    return found


def bot_scopes() -> set[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return set(manifest["oauth_config"]["scopes"]["bot"])


def test_every_method_called_is_covered_by_a_manifest_scope() -> None:
    called = methods_called()
    assert {"chat.postMessage", "conversations.create", "files.completeUploadExternal"} <= called
    for method in sorted(called):
        spec = json.loads((METHODS / f"{method}.json").read_text())
        if spec.get("no_scope_required"):
            continue
        needed = set(spec["scope"].get("bot", []))
        assert needed & bot_scopes(), f"{method} needs one of {sorted(needed)}"


def test_the_manifest_asks_for_nothing_the_code_does_not_use() -> None:
    used: set[str] = set()
    for method in methods_called():
        spec = json.loads((METHODS / f"{method}.json").read_text())
        used |= set(spec["scope"].get("bot", []))
    assert bot_scopes() - NOT_FOR_METHODS <= used


def test_the_manifest_declares_the_commands_interactivity_home_and_socket_mode() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/incident", "/request-access", "/access"}
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_doctor_checks_exactly_the_manifest_scopes() -> None:
    assert bot_scopes() == BOT_SCOPES, "update BOT_SCOPES in bot/cli/doctor.py with the manifest"
