"""Time limits for engines that cannot stop a running task themselves.

The engine arms a deadline when a task starts (or is handed to a cluster) and
disarms it when the outcome arrives; a deadline that passes first calls
``on_expire``, and the late outcome is then dropped by the engine.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable


class Deadlines:
    """One thread that sleeps until the nearest deadline, never polling."""

    def __init__(self, on_expire: Callable[[str], None]) -> None:
        self._on_expire = on_expire
        self._heap: list[tuple[float, str]] = []
        self._armed: dict[str, float] = {}
        self._expired: set[str] = set()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="farcall-deadlines", daemon=True)
        self._thread.start()

    def arm(self, task_id: str, timeout: float | None) -> None:
        if not timeout:
            return
        when = time.monotonic() + timeout
        with self._cond:
            self._armed[task_id] = when
            heapq.heappush(self._heap, (when, task_id))
            if self._heap[0][1] == task_id:
                self._cond.notify()

    def disarm(self, task_id: str) -> bool:
        """False when the deadline already passed: the caller must drop the outcome."""
        with self._cond:
            self._armed.pop(task_id, None)
            if task_id in self._expired:
                self._expired.discard(task_id)
                return False
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._heap:
                    self._cond.wait()
                if self._stopped:
                    return
                when, task_id = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if self._armed.get(task_id) != when:
                    continue  # disarmed or re-armed
                del self._armed[task_id]
                self._expired.add(task_id)
            self._on_expire(task_id)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
