"""The documentation holds: every relative link resolves, every `gatehouse ...` command exists.

Commands are read from code (inline spans and fenced blocks) wherever `gatehouse` stands in a
command's place: at the start, after `$`, `&&`, `;`, `|`, `--`, `exec`, a compose service name,
or as `.venv/bin/gatehouse`. Each is resolved through the real CLI, its `--long` options are
checked against the command's own, and its `--help` must run.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import app
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
