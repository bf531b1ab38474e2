"""`make demo` plays a whole incident with nothing but this repository and Python, and with
`--keep DIR` leaves its database and policy behind with a command that checks the chain again."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_demo_plays_an_incident_and_the_audit_chain_verifies(tmp_path: Path) -> None:
    kept = tmp_path.resolve() / "kept" / "demo"  # created by the demo
    done = run_demo("--keep", str(kept))
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = done.stdout
    for expected in (
        "types: /incident open",
        "[Approve]  [Deny]",
        "Approvals:* 2 of 2",
        "VAULT_TOKEN=",
        "logs in nowhere",
        "types: /access extend",
        "[Approve extension]",
        "extended until",
        "Break-glass: serving-cluster-exec",
        "Unreviewed break-glass",
        "The full audit report, with how to verify it, is attached below.",
        "is archived.",
        "✓ audit chain intact",
    ):
        assert expected in transcript, expected
    assert "password" not in transcript.split("logs in nowhere")[0].split("runs the unwrap")[0]
    assert sorted(path.name for path in kept.iterdir()) == ["gatehouse.db", "policy.yaml"]

    hint = transcript.rstrip().splitlines()[-1].strip()
    head = re.search(r"Chain head: event (\d+), `([0-9a-f]{64})`", transcript)
    assert head is not None
    assert hint.endswith(
        f" audit verify --database sqlite:///{kept}/gatehouse.db"
        f" --anchor {head.group(1)}:{head.group(2)}"
    )
    environment = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
    checked = subprocess.run(
        hint,
        shell=True,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "✓ audit chain intact" in checked.stdout
    assert f"anchors matched: event {head.group(1)}" in checked.stdout


def test_the_demo_keeps_nothing_over_an_earlier_database(tmp_path: Path) -> None:
    earlier = tmp_path.resolve() / "gatehouse.db"
    earlier.write_bytes(b"an earlier demo")

    done = run_demo("--keep", str(tmp_path))

    assert done.returncode == 1
    assert done.stderr.strip() == f"demo: {earlier} exists already; keep the demo in another folder"
    assert earlier.read_bytes() == b"an earlier demo"
