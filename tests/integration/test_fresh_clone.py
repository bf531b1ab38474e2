"""A clone of the repository needs nothing beside it: the tracked files alone, copied into a folder
with nothing next to them, load every emulator's protocol reference and play the demo. Code that
reads a file from outside the repository fails here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = (
    "GATEHOUSE_SLACK_SPECS",
    "GATEHOUSE_VAULT_OPENAPI",
    "GATEHOUSE_PAGERDUTY_CONTRACT",
    "DATABASE_URL",
    "PYTHONPATH",
)
# Starts each emulator (which loads its spec files) and says where everything came from.
LOAD_SPECS = """
import json
import bot, integrations, migrations, tests
from tests.emulators.pagerduty import contract, running_pagerduty
from tests.emulators.slack import running_slack
from tests.emulators.slack import spec as slack_spec
from tests.emulators.vault import running_vault
from tests.emulators.vault import spec as vault_spec

with running_slack(), running_vault(), running_pagerduty():
    pass
print(json.dumps({
    "modules": [m.__file__ for m in (bot, integrations, migrations, tests, slack_spec, contract)],
    "specs": [str(slack_spec.specs_dir()), str(vault_spec.spec_path()),
              str(contract.contract_path())],
    "methods": len(slack_spec.all_specs()),
}))
"""


def repository_files() -> list[str]:
    """The files a clone would have: tracked ones, plus new ones not ignored (not yet committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def test_a_copy_with_nothing_beside_it_loads_its_specs_and_plays_the_demo(tmp_path: Path) -> None:
    parent = tmp_path.resolve() / "empty-parent"
    clone = parent / "repo"
    for name in repository_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    assert [path.name for path in parent.iterdir()] == ["repo"]
    environment = {name: value for name, value in os.environ.items() if name not in OVERRIDES}
    environment["PYTHONPATH"] = str(clone)  # before the editable install of the working tree

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=clone,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    loaded = run("-c", LOAD_SPECS)
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(loaded.stdout)
    for path in found["modules"] + found["specs"]:
        assert Path(path).is_relative_to(clone), path
    assert found["methods"] > 30

    demo = run("-m", "tests.demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "✓ audit chain intact" in demo.stdout
    state = re.search(
        r"The database and the policy are in (\S+), removed at the end\.", demo.stdout
    )
    assert state is not None
    assert not Path(state.group(1)).exists(), "without --keep nothing is left behind"
    assert sorted(path.name for path in parent.iterdir()) == ["repo"]
