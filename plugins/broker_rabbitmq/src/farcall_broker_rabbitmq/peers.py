"""Which other service processes hear the wake-up fanout, so a process alone on its
vhost publishes nothing.

Every process says ``hello`` on the fanout when it starts and every ``ANNOUNCE``
seconds after, ``bye`` when it stops, and answers a ``hello`` from a process it did
not know with its own (so a newcomer learns of those already there). A process is
forgotten ``FORGET_AFTER`` seconds after it was last heard, which covers one killed
without a ``bye``. Knowing of nobody, a process skips its wake-ups: through one
process (the usual small deployment) a round trip then costs no broker messages at
all. A process that starts announces itself before it serves its first request; a
wake-up lost meanwhile costs latency, never a task (claims and waits look in the
database when they hear nothing).
"""

from __future__ import annotations

import threading
import time

#: Seconds between a process's announcements.
ANNOUNCE = 5.0
#: Seconds after which a process not heard from is taken for gone.
FORGET_AFTER = 3 * ANNOUNCE


class Peers:
    """The other processes heard lately; safe from any thread."""

    def __init__(self, forget_after: float = FORGET_AFTER) -> None:
        self._forget_after = forget_after
        self._last_heard: dict[str, float] = {}
        self._lock = threading.Lock()

    def heard(self, origin: str) -> bool:
        """``origin`` said something now; True if it was not known (or forgotten)."""
        now = time.monotonic()
        with self._lock:
            last = self._last_heard.get(origin)
            self._last_heard[origin] = now
        return last is None or now - last > self._forget_after

    def gone(self, origin: str) -> None:
        with self._lock:
            self._last_heard.pop(origin, None)

    def any(self) -> bool:
        """Whether some other process was heard within ``forget_after`` seconds."""
        cutoff = time.monotonic() - self._forget_after
        with self._lock:
            for origin, last in list(self._last_heard.items()):
                if last >= cutoff:
                    return True
                del self._last_heard[origin]
        return False
