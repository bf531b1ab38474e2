"""Named points where a crash-recovery test makes the process die, as a power cut would.

Inert unless GATEHOUSE_CRASH_FILE is set (tests only). At each point, if that file names the
point, the file is removed (so the restarted process runs on) and the process kills itself
with SIGKILL: no `finally`, no atexit, nothing flushed.
"""

import os
import signal
from pathlib import Path

CRASH_FILE_VARIABLE = "GATEHOUSE_CRASH_FILE"


def crash_point(name: str) -> None:
    path = os.environ.get(CRASH_FILE_VARIABLE)
    if not path:
        return
    try:
        armed = Path(path).read_text().strip()
    except FileNotFoundError:
        return
    if armed == name:
        Path(path).unlink(missing_ok=True)
        os.kill(os.getpid(), signal.SIGKILL)
