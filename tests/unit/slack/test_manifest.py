"""The Slack app manifest grants exactly the bot scopes the code's Web API calls need, and its
usage hints offer what the commands accept."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.cli.doctor import BOT_SCOPES
from bot.domain.errors import InvalidInput
from bot.slack.blocks.access import ACCESS_USAGE, REQUEST_USAGE
from bot.slack.blocks.incident import INCIDENT_USAGE
from bot.slack.parsing import (
    parse_access_command,
    parse_incident_command,
    parse_request_text,
    split_break_glass,
)

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


# A sample for each placeholder the usage hints use; a new placeholder needs one here.
_SAMPLES = {
    "<title>": "Ranker latency",
    "[sev1-sev4]": "sev1",
    "@user": "<@U0123ABCD|alice>",
    "<resolution>": "rolled back",
    "<resource>": "inference-logs-ro",
    "[duration]": "1h",
    "<reason>": "read the failing prompts",
    "[--break-glass]": "--break-glass",
    "<id>": "R-ABCDEFGH",
    "<duration>": "30m",
    "[reason]": "still debugging",
}
_PLACEHOLDER = re.compile(r"<[^>]+>|\[[^\]]+\]|@user")
_PARSERS: dict[str, Callable[[str], object]] = {
    "/incident": parse_incident_command,
    "/access": parse_access_command,
    "/request-access": lambda text: parse_request_text(split_break_glass(text)[0]),
}
# The bot's own usage help, shown when a command is mistyped.
_USAGE = {"/incident": INCIDENT_USAGE, "/access": ACCESS_USAGE, "/request-access": REQUEST_USAGE}


def usage_hints() -> dict[str, str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return {c["command"]: c.get("usage_hint", "") for c in manifest["features"]["slash_commands"]}


def alternatives(hint: str) -> list[str]:
    """The forms a hint offers: `a | b` is two; a hint wholly in `[...]` may also be empty."""
    if hint.startswith("[") and _closing_bracket(hint) == len(hint) - 1:
        return ["", *alternatives(hint[1:-1])]
    return [form.strip() for form in re.split(r" \| (?![^\[]*\])", hint)]


def _closing_bracket(text: str) -> int:
    depth = 0
    for at, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0:
            return at
    return -1


def examples(form: str) -> list[str]:
    """What someone following the form would type: with every optional part, and without."""
    unknown = set(_PLACEHOLDER.findall(form)) - set(_SAMPLES)
    assert not unknown, f"give {sorted(unknown)} a sample in _SAMPLES"
    full = _PLACEHOLDER.sub(lambda m: _SAMPLES[m[0]], form)
    bare = _PLACEHOLDER.sub(lambda m: "" if m[0].startswith("[") else _SAMPLES[m[0]], form)
    return [full, " ".join(bare.split())]


def test_every_usage_hint_form_is_accepted_by_the_command_parser() -> None:
    hints = usage_hints()
    assert set(hints) == set(_PARSERS)
    for command, hint in hints.items():
        for form in alternatives(hint):
            for typed in examples(form):
                _PARSERS[command](typed)  # raises InvalidInput with the usage if it does not fit


def test_every_subcommand_and_flag_of_the_bots_usage_help_is_in_the_manifest_hint() -> None:
    """The hint Slack shows while typing offers what the bot's own help offers."""
    for command, hint in usage_hints().items():
        forms = [
            f.split() for f in re.findall(rf"`{re.escape(command)}((?: [^`]*)?)`", _USAGE[command])
        ]
        assert forms, f"{command}: its usage help names no form"
        # A command whose forms start with an argument (`<resource>`) has no subcommands.
        has_subcommands = not any(words and _PLACEHOLDER.fullmatch(words[0]) for words in forms)
        offered = set(re.sub(r"[\[\]|]", " ", hint).split())
        for words in forms:
            needed = {w for w in words if w.startswith("--")}
            if has_subcommands and words:
                needed.add(words[0])
            assert needed <= offered, f"{command} hint {hint!r} lacks {sorted(needed - offered)}"


def test_the_hint_checks_catch_a_stale_hint() -> None:
    assert alternatives("[cancel <id> | revoke <id>]") == ["", "cancel <id>", "revoke <id>"]
    assert examples("extend <id> <duration> [reason]") == [
        "extend R-ABCDEFGH 30m still debugging",
        "extend R-ABCDEFGH 30m",
    ]
    with pytest.raises(InvalidInput):
        parse_access_command("extend R-ABCDEFGH")  # a hint without <duration> would fail
