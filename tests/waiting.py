"""Waiting for what the bot does after its ack, in tests."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], what: str | None = None, *, timeout: float = 15.0
) -> T:
    """`check()` once it is truthy; AssertionError naming `what` (or the check) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or check.__name__}: not within {timeout} s")
        time.sleep(0.05)
