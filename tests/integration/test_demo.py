"""`make demo` plays a whole incident with nothing but this repository and Python."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_plays_an_incident_and_the_audit_chain_verifies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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
        "audit summary",
        "is archived.",
        "✓ audit chain intact",
    ):
        assert expected in transcript, expected
    assert "password" not in transcript.split("logs in nowhere")[0].split("runs the unwrap")[0]
