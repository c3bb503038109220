"""A small thread-safe cache whose entries expire after a few seconds.

Token and permission lookups run on every request; caching them briefly keeps the
database out of the hot path, and the short lifetime bounds how long a change made
elsewhere (the admin commands write to the database directly) takes to apply.
Changes made through the service invalidate their entries at once. A full cache
drops its expired entries, then its oldest: never everything at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
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
        self.put(key, value, loaded_at)
        return value

    def put(self, key: K, value: V, loaded_at: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds from ``loaded_at`` (``time.monotonic()``
        when the load began; now by default)."""
        if self.ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self.max_entries:
                self._evict(now)
            self._entries[key] = ((now if loaded_at is None else loaded_at) + self.ttl, value)

    def _evict(self, now: float) -> None:
        # Entries are in the order they were stored, so expired ones come first.
        entries = self._entries
        while entries and next(iter(entries.values()))[0] <= now:
            entries.popitem(last=False)
        if len(entries) >= self.max_entries:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
