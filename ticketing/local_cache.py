"""A tiny per-process TTL cache for hot, rarely-changing reads (event settings on the
queue endpoints), so that join/status need no database or cache round trip.
Entries live a couple of seconds: a staff change reaches every process quickly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class LocalTTLCache:
    def __init__(self) -> None:
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_set(self, key: Any, ttl: float, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        entry = self._data.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = compute()
        with self._lock:
            self._data[key] = (now + ttl, value)
        return value

    def delete(self, key: Any) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_cache = LocalTTLCache()
