"""Small thread-safe, bounded in-process caches (cachetools behind a lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import Cache, LRUCache, TTLCache

K = TypeVar("K")
V = TypeVar("V")


class LockedCache(Generic[K, V]):
    """A bounded LRU, or a TTL cache when ``ttl`` is given; safe across threads.

    A ``ttl`` of 0 disables caching altogether (every ``get`` misses).
    """

    def __init__(
        self,
        maxsize: int,
        ttl: float | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enabled = ttl is None or ttl > 0
        self._cache: Cache[K, V] = (
            LRUCache(maxsize) if ttl is None else TTLCache(maxsize, ttl or 1, timer=timer)
        )
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if not self._enabled:
            return None
        with self._lock:
            return self._cache.get(key)

    def set(self, key: K, value: V) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._cache[key] = value

    def pop(self, key: K) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)
