"""The documentation holds: every relative link resolves, every `gatehouse ...` command exists,
every log line the runbook says to alert on is one the code writes, and the policy reference
names exactly the keys a policy file may have.

Commands are read from code (inline spans and fenced blocks) wherever `gatehouse` stands in a
command's place: at the start, after `$`, `&&`, `;`, `|`, `--`, `exec`, a compose service name,
or as `.venv/bin/gatehouse`. Each is resolved through the real CLI, its `--long` options are
checked against the command's own, and its `--help` must run.
"""

import ast
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from bot.cli import app
from bot.policy.models import PolicyDocument
from tests.unit.deploy.helpers import REPO

DOCUMENTS = sorted(
    {
        REPO / "README.md",
        REPO / "SECURITY.md",
        *(REPO / "docs").glob("*.md"),
        *(REPO / "deploy").rglob("README.md"),
    }
)
_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
# `gatehouse` where a command starts; not `-n gatehouse`, `deploy/gatehouse`, `gatehouse:dev`.
_COMMAND = re.compile(
    r"(?:^|(?<=\$ )|(?<=&& )|(?<=; )|(?<=\| )|(?<=-- )|(?<=exec )|(?<=gatehouse )|(?<=bin/))"
    r"gatehouse(?=\s|$)((?:[ \t]+(?![>#])[^\s|;&'\"]+)*)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Mention:
    document: Path
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.document.relative_to(REPO)}: gatehouse {' '.join(self.words)}"


def code_text(markdown: str) -> list[str]:
    """The code of a document: fenced blocks (continuation lines joined), then inline spans."""
    blocks = [
        "\n".join(line.strip() for line in block.replace("\\\n", " ").splitlines())
        for block in _FENCE.findall(markdown)
    ]
    prose = _FENCE.sub("", markdown)
    return [*blocks, *_SPAN.findall(prose)]


def mentions() -> list[Mention]:
    found = []
    for document in DOCUMENTS:
        for code in code_text(document.read_text(encoding="utf-8")):
            for match in _COMMAND.finditer(code):
                words = tuple(match[1].split())
                if not words or words[0] in ("gatehouse", "sh"):
                    continue  # the bare name, or a compose service: the command comes next
                found.append(Mention(document, words))
    return found


def resolve(words: tuple[str, ...]) -> tuple[list[str], Any]:
    """The subcommand path the words name, and its command; fails on an unknown subcommand."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        subcommands = getattr(command, "commands", None)  # only groups have subcommands
        if subcommands is None or word.startswith("-"):
            break
        if word not in subcommands:
            known = ", ".join(sorted(command.commands))
            raise AssertionError(f"no command `{' '.join(['gatehouse', *path, word])}` ({known})")
        command = subcommands[word]
        path.append(word)
    return path, command


def test_the_documents_mention_the_commands_people_need() -> None:
    named = {" ".join(path) for path in mentioned_paths()}
    for command in ("doctor", "config", "audit verify", "audit keygen", "vault reconcile"):
        assert command in named, f"no document mentions `gatehouse {command}`"


def unknown_options(mention: Mention) -> set[str]:
    """The `--long` options a mention uses that its command does not have."""
    _, command = resolve(mention.words)
    options = {name for param in command.params for name in param.opts if name.startswith("--")}
    used = {word.split("=")[0] for word in mention.words if word.startswith("--")}
    return used - options - {"--help"}


@pytest.mark.parametrize("mention", mentions(), ids=str)
def test_every_mentioned_command_and_option_exists(mention: Mention) -> None:
    path, _ = resolve(mention.words)
    assert path, f"{mention}: name a subcommand"
    unknown = unknown_options(mention)
    assert not unknown, f"{mention}: `gatehouse {' '.join(path)}` has no {sorted(unknown)}"


def mentioned_paths() -> list[tuple[str, ...]]:
    """Each distinct command path named (unknown ones fail in the test above)."""
    paths = set()
    for mention in mentions():
        try:
            paths.add(tuple(resolve(mention.words)[0]))
        except AssertionError:
            continue
    return sorted(paths)


@pytest.mark.parametrize("path", mentioned_paths(), ids=" ".join)
def test_every_mentioned_command_answers_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings."""
    anchors: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def broken_links(document: Path) -> list[str]:
    """Relative links of a document whose file, or heading, does not exist."""
    broken = []
    for target in _LINK.findall(_FENCE.sub("", document.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_resolves(document: Path) -> None:
    assert not broken_links(document)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A typo in a command, an unknown option and a dead link or anchor are each caught."""
    with pytest.raises(AssertionError, match="no command `gatehouse audit verfy`"):
        resolve(("audit", "verfy"))
    typo = Mention(REPO / "README.md", ("audit", "verify", "--public-kee", "k.pub"))
    assert unknown_options(typo) == {"--public-kee"}
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nSee [there](missing.md), [here](#nowhere), [up](#title).\n")
    assert broken_links(page) == [
        "missing.md: no such file",
        "#nowhere: no heading #nowhere in page.md",
    ]
    headings = "## Vault is down\n## A `gatehouse` command, twice!\n## Vault is down\n"
    assert github_anchors(headings) == {
        "vault-is-down",
        "a-gatehouse-command-twice",
        "vault-is-down-1",
    }
    code = (
        "kubectl -n gatehouse exec deploy/gatehouse -- gatehouse doctor\ndocker build -t gatehouse"
    )
    assert [tuple(match[1].split()) for match in _COMMAND.finditer(code)] == [("doctor",)]


OPERATIONS = REPO / "docs" / "operations.md"
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
_LEVEL_OF = {"exception": "error", "critical": "error"}


@dataclass(frozen=True)
class LogCall:
    """One log call in the code: its message (a %-format or a structlog event) and level."""

    where: str
    message: str
    level: str | None  # None: chosen at run time (`log.log(level, ...)`)

    def emits(self, event: str, level: str) -> bool:
        """Whether this call can write `event` at `level`; `…` in `event` stands for any text."""
        pattern = re.sub(r"%[sdr]", "\x00", self.message)
        pattern = ".+".join(re.escape(part) for part in pattern.split("\x00"))
        shown = event.replace("…", "x")
        return re.fullmatch(pattern, shown) is not None and self.level in (level, None)


def log_calls(paths: list[Path], root: Path = REPO) -> list[LogCall]:
    """Every `log.<level>("...")` / `logger.<level>("...")` and `log.log(level, "...")` call."""
    calls = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver, method = node.func.value, node.func.attr
            if not (isinstance(receiver, ast.Name) and receiver.id in ("log", "logger")):
                continue
            if method in _LOG_METHODS:
                message_at, level = 0, _LEVEL_OF.get(method, method)
            elif method == "log":
                message_at, level = 1, None
            else:
                continue
            if len(node.args) > message_at:
                message = node.args[message_at]
                if isinstance(message, ast.Constant) and isinstance(message.value, str):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    calls.append(LogCall(where, message.value, level))
    return calls


def alert_table(markdown: str) -> list[tuple[str, str]]:
    """(event, level) of each row of the table of log lines worth an alert."""
    rows = re.search(r"^\| `event` \| `level` \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", markdown, re.M)
    assert rows, "no `event` | `level` table"
    found = []
    for row in rows[1].splitlines():
        events, level = (cell.strip() for cell in row.strip("|").split("|")[:2])
        found += [(event, level) for event in _SPAN.findall(events)]
    return found


def test_every_log_line_worth_an_alert_is_one_the_code_writes() -> None:
    calls = log_calls([*(REPO / "bot").rglob("*.py"), *(REPO / "integrations").rglob("*.py")])
    rows = alert_table(OPERATIONS.read_text(encoding="utf-8"))
    assert len(rows) >= 5
    stale = [
        f"{event} ({level})"
        for event, level in rows
        if not any(c.emits(event, level) for c in calls)
    ]
    assert not stale, f"docs/operations.md names log lines the code never writes: {stale}"


def test_the_alert_check_catches_a_stale_event(tmp_path: Path) -> None:
    """A renamed event, a wrong level and a table missing are each caught; `…` and `%s` match."""
    source = tmp_path / "jobs.py"
    source.write_text(
        'log.exception("job %s failed", name)\n'
        'log.warning("reconcile: %s", problem)\n'
        'logger.log(level, "export to %s failed: %s", sink, error)\n'
        "math.log(2)\n"
    )
    calls = log_calls([source], root=tmp_path)
    assert [(c.where, c.level) for c in calls] == [
        ("jobs.py:1", "error"),
        ("jobs.py:2", "warning"),
        ("jobs.py:3", None),
    ]

    def emitted(event: str, level: str) -> bool:
        return any(call.emits(event, level) for call in calls)

    assert emitted("job sweep failed", "error")
    assert emitted("reconcile: …", "warning")
    assert emitted("export to … failed: …", "error")
    assert not emitted("reconcile at start: …", "warning")
    assert not emitted("job sweep failed", "warning")
    assert not emitted("job sweep failed at once", "error")
    table = "| `event` | `level` | meaning |\n|---|---|---|\n| `a`, `b` | error | x |\n"
    assert alert_table(table) == [("a", "error"), ("b", "error")]
    with pytest.raises(AssertionError, match="no `event`"):
        alert_table("| event | level |\n")


POLICY_DOC = REPO / "docs" / "policy.md"


def policy_keys(model: type[BaseModel] = PolicyDocument, prefix: str = "") -> set[str]:
    """Every key a policy file may set, as dotted paths (`resources.<name>.vault.path`)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        nested = _section_of(field.annotation)
        if nested is None:
            keys.add(prefix + name)
        else:
            section, keyed_by_name = nested
            keys |= policy_keys(section, f"{prefix}{name}.{'<name>.' if keyed_by_name else ''}")
    return keys


def _section_of(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model a field holds (itself, optional, or as the values of a dict), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict:
        inner = _section_of(args[1])
        return None if inner is None else (inner[0], True)
    for arg in args:  # `X | None`
        if arg is not type(None) and (inner := _section_of(arg)) is not None:
            return inner
    return None


def documented_policy_keys(markdown: str) -> set[str]:
    """The first-column keys of the `| key | default | ...` table."""
    table = re.search(r"^\| key \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", markdown, re.M)
    assert table, "no `| key |` table"
    return {_SPAN.findall(row)[0] for row in table[1].splitlines()}


def test_the_policy_reference_names_every_key_and_only_those() -> None:
    keys = policy_keys()
    assert {"resources.<name>.sensitive", "resources.<name>.vault.path", "version"} <= keys
    documented = documented_policy_keys(POLICY_DOC.read_text(encoding="utf-8"))
    assert not keys - documented, f"docs/policy.md does not describe {sorted(keys - documented)}"
    assert not documented - keys, f"docs/policy.md describes unknown {sorted(documented - keys)}"


_MAKE = re.compile(r"(?:^|(?<=\s))make ([a-z][\w-]*)", re.MULTILINE)
_TARGET = re.compile(r"^([a-z][\w-]*):", re.MULTILINE)


def make_targets_mentioned(markdown: str) -> set[str]:
    """The `make <target>` commands in a document's code."""
    return {target for code in code_text(markdown) for target in _MAKE.findall(code)}


def test_every_mentioned_make_target_exists() -> None:
    targets = set(_TARGET.findall((REPO / "Makefile").read_text(encoding="utf-8")))
    for document in DOCUMENTS:
        mentioned = make_targets_mentioned(document.read_text(encoding="utf-8"))
        unknown = mentioned - targets
        assert not unknown, f"{document.relative_to(REPO)}: no make target {sorted(unknown)}"
    readme = make_targets_mentioned((REPO / "README.md").read_text(encoding="utf-8"))
    assert {"run", "test", "demo"} <= readme
    assert make_targets_mentioned("`PYTHON=python3.12 make demo`, `make run`\n") == {"demo", "run"}
