"""A small thread-safe cache whose entries expire after a few seconds.

Token and permission lookups run on every request; caching them briefly keeps the
database out of the hot path, and the short lifetime bounds how long a change made
elsewhere (the admin commands write to the database directly) takes to apply.
Changes made through the service invalidate their entries at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: What :meth:`TTLCache.get` returns for a key without a live entry.
MISSING = object()


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | object:
        """The live entry for ``key``, or :data:`MISSING`."""
        if self.ttl > 0:
            now = time.monotonic()
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry[0] > now:
                    return entry[1]
        return MISSING

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        value = self.get(key)
        if value is not MISSING:
            return value  # type: ignore[return-value]
        # Dated from before the load, so an entry never outlives a change committed
        # after the load began by more than ``ttl``: the bound revocation promises.
        loaded_at = time.monotonic()
        value = load()
        if self.ttl > 0:
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = (loaded_at + self.ttl, value)
        return value

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
