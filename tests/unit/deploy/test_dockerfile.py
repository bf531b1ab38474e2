"""deploy/Dockerfile and .dockerignore: read as Docker reads them, without a Docker engine."""

import fnmatch
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.unit.deploy.helpers import DEPLOY, REPO, default_port

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make ", "clang", "libpq-dev", "python3-dev")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: `\\` continues a line; comment lines inside one are dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, arguments = " ".join(parts).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a continued line"
    return instructions


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda match: variables[match[1]], value)


def stages(instructions: list[Instruction]) -> list[Stage]:
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [word for word in words if not word.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(substitute(words[0], global_args), name))
        elif not found:
            assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG before FROM"
            key, _, default = instruction.arguments.partition("=")
            global_args[key] = default
        else:
            found[-1].instructions.append(instruction)
    return found


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.arguments)
    assert isinstance(value, list), f"line {instruction.line}: use the JSON (exec) form"
    assert all(isinstance(item, str) for item in value)
    return [str(item) for item in value]


def copy_sources(instruction: Instruction) -> tuple[list[str], str]:
    words = [word for word in instruction.arguments.split() if not word.startswith("--")]
    if words[0].startswith("["):
        words = exec_form(instruction)
    return words[:-1], words[-1]


@pytest.fixture(scope="module")
def all_stages() -> list[Stage]:
    return stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def final(all_stages: list[Stage]) -> Stage:
    return all_stages[-1]


def test_parser_joins_continued_lines() -> None:
    parsed = parse_dockerfile('FROM x AS b\n# note\nRUN a \\\n  # inside\n  && b\nCMD ["c"]\n')
    assert [(item.keyword, item.arguments, item.line) for item in parsed] == [
        ("FROM", "x AS b", 1),
        ("RUN", "a && b", 3),
        ("CMD", '["c"]', 6),
    ]


def test_is_multi_stage_on_python_311_slim(all_stages: list[Stage]) -> None:
    assert len(all_stages) >= 2
    assert {stage.base for stage in all_stages} == {"python:3.11-slim"}
    builder_names = {stage.name for stage in all_stages[:-1]}
    copied_from = {
        word.removeprefix("--from=")
        for item in all_stages[-1].all("COPY")
        for word in item.arguments.split()
        if word.startswith("--from=")
    }
    assert copied_from, "the final stage copies its venv from the builder"
    assert copied_from <= builder_names


def test_builder_installs_the_lock_then_the_project_without_resolving(
    all_stages: list[Stage],
) -> None:
    runs = " ".join(item.arguments for stage in all_stages[:-1] for item in stage.all("RUN"))
    assert re.search(r"pip install [^&]*--no-deps[^&]* -r requirements\.lock", runs)
    assert re.search(r"pip install --no-deps [^&]*\.(\s|$)", runs)
    assert "/opt/venv" in runs


def test_final_stage_copies_only_the_virtualenv(final: Stage) -> None:
    for item in final.all("COPY") + final.all("ADD"):
        assert item.keyword == "COPY" and "--from=" in item.arguments, (
            f"line {item.line}: the final stage takes nothing from the build context"
        )
        sources, _ = copy_sources(item)
        assert sources == ["/opt/venv"]


def test_final_stage_has_no_build_tools(final: Stage) -> None:
    for item in final.all("RUN"):
        for tool in BUILD_TOOLS:
            assert tool not in f"{item.arguments} ", f"line {item.line}: {tool.strip()}"
        assert "pip install" not in item.arguments


def test_runs_as_a_fixed_non_root_user(final: Stage) -> None:
    user = final.last("USER").arguments.split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit() and int(user) >= 10000, "a fixed numeric UID, for runAsNonRoot"
    created = " ".join(item.arguments for item in final.all("RUN"))
    assert f"--uid {user}" in created, "the image knows the user it runs as"
    user_index = final.instructions.index(final.last("USER"))
    assert not [item for item in final.instructions[user_index:] if item.keyword == "RUN"]


def test_workdir_env_and_port(final: Stage) -> None:
    assert final.last("WORKDIR").arguments == "/app"
    env = " ".join(item.arguments for item in final.all("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "/opt/venv/bin" in env
    assert final.last("EXPOSE").arguments.split("/")[0] == str(default_port())


def test_entrypoint_is_gatehouse_run(final: Stage) -> None:
    assert exec_form(final.last("ENTRYPOINT")) == ["gatehouse"]
    assert exec_form(final.last("CMD")) == ["run"]


def healthcheck_command(final: Stage) -> list[str]:
    arguments = final.last("HEALTHCHECK").arguments
    options, _, command = arguments.partition("CMD ")
    for option in options.split():
        assert option.split("=")[0] in {"--interval", "--timeout", "--start-period", "--retries"}
    return exec_form(Instruction("CMD", command, 0))


def test_healthcheck_gets_healthz_with_python(final: Stage) -> None:
    command = healthcheck_command(final)
    assert command[:2] == ["python", "-c"], "slim has no curl: python and urllib"
    assert "urllib" in command[2]
    assert "127.0.0.1" in command[2]
    assert "/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def healthz_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_healthcheck(final: Stage, **env: str) -> int:
    command = healthcheck_command(final)
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "-c", command[2]],
        env=clean | env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


def test_healthcheck_passes_when_healthz_answers(final: Stage, healthz_port: int) -> None:
    assert run_healthcheck(final, GATEHOUSE_MODE="http", GATEHOUSE_PORT=str(healthz_port)) == 0


def test_healthcheck_fails_when_nothing_listens(final: Stage, healthz_port: int) -> None:
    with HTTPServer(("127.0.0.1", 0), _Healthz) as unused:
        closed_port = unused.server_address[1]
    assert run_healthcheck(final, GATEHOUSE_MODE="http", GATEHOUSE_PORT=str(closed_port)) != 0


def test_healthcheck_passes_in_socket_mode_which_serves_no_http(final: Stage) -> None:
    assert run_healthcheck(final) == 0
    assert run_healthcheck(final, GATEHOUSE_MODE="socket") == 0


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().rstrip("/") for line in lines]
    patterns = [pattern for pattern in patterns if pattern and not pattern.startswith("#")]
    assert not [pattern for pattern in patterns if pattern.startswith("!")], "keep it a denylist"
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `path` or one of its parent directories from the context."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(Path(candidate).name, bare):
                return True
    return False


def test_every_copied_path_exists_and_reaches_the_build_context(all_stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    copied = 0
    for stage in all_stages:
        for item in stage.all("COPY") + stage.all("ADD"):
            if "--from=" in item.arguments:
                continue
            sources, _ = copy_sources(item)
            for source in sources:
                assert (REPO / source).exists(), f"line {item.line}: {source} is not in the repo"
                assert not ignored(source, patterns), f"line {item.line}: .dockerignore drops it"
                copied += 1
    assert copied >= 4


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = dockerignore_patterns()
    for path in (".venv", ".git", ".env", "deploy/.env", "gatehouse.db", ".mypy_cache"):
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"
    for path in ("bot/__pycache__/config.cpython-311.pyc", ".pytest_cache", "tests"):
        assert ignored(path, patterns), path
    for path in ("bot/config.py", "pyproject.toml", "requirements.lock", "migrations/env.py"):
        assert not ignored(path, patterns), path
