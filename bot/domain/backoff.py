"""Exponential backoff between retries: the first wait, doubled per attempt, capped."""

from datetime import timedelta

MOST_DOUBLINGS = 16  # far past any cap; keeps the shift small


def retry_wait(attempts: int, *, first: timedelta, longest: timedelta) -> timedelta:
    """The wait after `attempts` failed attempts (1: `first`, 2: twice that...), at most
    `longest`."""
    doublings = min(max(attempts - 1, 0), MOST_DOUBLINGS)
    return min(first * (1 << doublings), longest)
