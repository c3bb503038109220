"""Words that wait a moment to ride in a message that goes anyway.

Each AMQP message costs a service process about as much Python as a small request
(frames, a task per delivery), and a round trip between processes made six. Some
words are on nobody's critical path: the word that a hand reached its claim (the
submission needs it only to decide, seconds later, whether to put the tasks back)
and results told again once committed (for a wait that began in between). Such a
word is held per key (an endpoint, an owner) until the key's next message carries
it, or goes alone once its delay is over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: ``later(delay, callback, *args)``: call back on the connection's loop.
Later = Callable[..., None]


class Riding(Generic[T]):
    """Items held per key for the key's next message; from any thread."""

    def __init__(self, later: Later, alone: Callable[[str, list[T]], Any]) -> None:
        self._later = later
        self._alone = alone
        #: Key -> (the hold's number, its items): a timer of an earlier hold of the
        #: same key, taken since, leaves a newer one alone.
        self._held: dict[str, tuple[int, list[T]]] = {}
        self._holds = 0
        self._lock = threading.Lock()

    def hold(self, key: str, items: Iterable[T], delay: float) -> None:
        """Keep ``items`` for ``key``'s next message; alone after ``delay`` seconds."""
        items = list(items)
        if not items:
            return
        with self._lock:
            entry = self._held.get(key)
            if entry is None:
                self._holds += 1
                entry = self._held[key] = (self._holds, [])
                first = entry[0]
            else:
                first = 0
            entry[1].extend(items)
        if first:
            self._later(delay, self._over, key, first)

    def take(self, key: str) -> list[T]:
        """The items held for ``key``, to ride in the message going now."""
        with self._lock:
            entry = self._held.pop(key, None)
        return entry[1] if entry else []

    def take_all(self) -> dict[str, list[T]]:
        """Every item held (the process stops: they go now)."""
        with self._lock:
            held, self._held = self._held, {}
        return {key: items for key, (_hold, items) in held.items()}

    def _over(self, key: str, hold: int) -> None:
        with self._lock:
            entry = self._held.get(key)
            if entry is None or entry[0] != hold:
                return
            del self._held[key]
        self._alone(key, entry[1])
