"""`make run` installs the runtime only and leaves the database to `gatehouse run --migrate`
(which checks the settings first); `make test` installs the dev tools; neither reinstalls
what the other already installed. Checked with `make -n` (print, do not run)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.unit.deploy.helpers import REPO

RUNTIME_INSTALL = "pip install --quiet -c requirements.lock -e ."
DEV_INSTALL = "pip install --quiet -c requirements.lock -e '.[dev]'"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(target: str, venv: Path, **variables: str) -> list[str]:
    """The commands `make` would run for `target` with its virtualenv at `venv`."""
    assignments = [f"{name}={value}" for name, value in {"VENV": str(venv), **variables}.items()]
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *assignments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def installed(venv: Path, *stamps: str) -> None:
    """A virtualenv whose stamps are newer than pyproject.toml and requirements.lock."""
    (venv / "bin").mkdir(parents=True)
    later = time.time() + 60
    for name in ("bin/python", *stamps):
        (venv / name).touch()
        os.utime(venv / name, (later, later))


def test_run_installs_the_runtime_only_then_migrates_through_run(tmp_path: Path) -> None:
    commands = planned("run", tmp_path / "venv")
    assert any(command.endswith(RUNTIME_INSTALL) for command in commands)
    assert not any("[dev]" in command for command in commands)
    assert commands[-1].endswith("/bin/gatehouse run --migrate")
    assert not any("db upgrade" in command for command in commands)


def test_test_after_run_installs_the_dev_tools(tmp_path: Path) -> None:
    installed(tmp_path, ".installed-runtime")
    assert any(command.endswith(DEV_INSTALL) for command in planned("pytest", tmp_path))
    assert planned("run", tmp_path) == [f"{tmp_path}/bin/gatehouse run --migrate"]


def test_run_after_test_installs_nothing(tmp_path: Path) -> None:
    installed(tmp_path, ".installed", ".installed-runtime")
    assert planned("run", tmp_path) == [f"{tmp_path}/bin/gatehouse run --migrate"]


def test_migrate_needs_the_runtime_only(tmp_path: Path) -> None:
    installed(tmp_path, ".installed-runtime")
    assert planned("migrate", tmp_path) == [f"{tmp_path}/bin/gatehouse db upgrade"]


def test_a_missing_python_is_named_with_the_way_out(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHON": "python3.11-not-installed"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "python3.11-not-installed was not found on PATH" in result.stdout
    assert "PYTHON=python3.12 make run" in result.stdout
    assert not (tmp_path / "venv").exists()
