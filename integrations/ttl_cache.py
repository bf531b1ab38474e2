"""A small thread-safe cache whose entries expire: lookups that may be a little stale, briefly."""

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Remembers what `load` returned for `seconds`. A load that raises is not remembered, so
    the next call asks again."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._items: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and self._clock() - hit[0] < self.seconds:
            return hit[1]
        value = load()  # outside the lock: a slow lookup holds up nobody else
        with self._lock:
            self._items[key] = (self._clock(), value)
        return value
