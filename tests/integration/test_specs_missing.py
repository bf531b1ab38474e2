"""Without its protocol reference an emulator refuses to start, in one line that says where it
looked: never a connection dropped in the middle of a request or a traceback in a server thread."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.slack import SlackEmulator
from tests.emulators.vault import VaultEmulator
from tests.specs import SPECS, SpecFilesMissing

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = ("GATEHOUSE_SLACK_SPECS", "GATEHOUSE_VAULT_OPENAPI", "GATEHOUSE_PAGERDUTY_CONTRACT")


def refusal(start: Callable[[], None]) -> str:
    """The message of the SpecFilesMissing `start()` raises, checked to be one line."""
    with pytest.raises(SpecFilesMissing) as raised:
        start()
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_slack_emulator_without_method_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEHOUSE_SLACK_SPECS", str(tmp_path))
    emulator = SlackEmulator()

    message = refusal(emulator.start)

    assert message.startswith(f"slack emulator: spec files missing at {tmp_path / 'methods'};")
    assert emulator.port == 0, "nothing was served"


def test_slack_emulator_without_the_file_of_a_method_it_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "methods").mkdir()
    for method in ("auth.test", "chat.postMessage"):
        shutil.copy(SPECS / "slack" / "methods" / f"{method}.json", tmp_path / "methods")
    monkeypatch.setenv("GATEHOUSE_SLACK_SPECS", str(tmp_path))

    message = refusal(SlackEmulator().start)

    assert message.startswith("slack emulator: no method JSON for chat.delete, ")
    assert "auth.test" not in message and "views.update" in message


def test_vault_emulator_without_its_openapi_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEHOUSE_VAULT_OPENAPI", str(tmp_path / "openapi.json"))
    emulator = VaultEmulator()

    message = refusal(emulator.start)

    assert message.startswith(f"vault emulator: spec file missing at {tmp_path / 'openapi.json'};")
    assert emulator.port == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "vault emulator: cannot read "),
        ('{"paths": {"/sys/health": {}}}', "describes no path under /sys/capabilities, "),
    ],
    ids=["unreadable", "without-served-paths"],
)
def test_vault_emulator_with_an_unusable_openapi_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: str
) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(content)
    monkeypatch.setenv("GATEHOUSE_VAULT_OPENAPI", str(document))

    assert expected in refusal(VaultEmulator().start)


def test_pagerduty_emulator_without_its_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEHOUSE_PAGERDUTY_CONTRACT", str(tmp_path / "contract.yaml"))

    message = refusal(PagerDutyEmulator().start)

    assert message.startswith("pagerduty emulator: contract file missing at ")


@pytest.mark.parametrize(
    ("command", "variable", "said"),
    [
        (["-m", "tests.emulators.slack", "--port", "0"], "GATEHOUSE_SLACK_SPECS", "slack emulator"),
        (
            ["-m", "tests.emulators.vault", "--port", "0"],
            "GATEHOUSE_VAULT_OPENAPI",
            "vault emulator",
        ),
        (["-m", "tests.demo"], "GATEHOUSE_VAULT_OPENAPI", "vault emulator"),
    ],
    ids=["slack", "vault", "demo"],
)
def test_commands_say_it_in_one_line_and_exit_1(
    tmp_path: Path, command: list[str], variable: str, said: str
) -> None:
    env = {name: value for name, value in os.environ.items() if name not in OVERRIDES}
    done = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env={**env, variable: str(tmp_path / "absent")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{said}: "), done.stderr
    assert str(tmp_path / "absent") in done.stderr
