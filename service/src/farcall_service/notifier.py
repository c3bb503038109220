"""Wakes long-polling claims the moment tasks for their endpoint are committed.

Each waiting claim registers an :class:`asyncio.Event` for its endpoint; whoever
commits tasks for that endpoint (a submit route in a worker thread, the requeue
reaper) calls :meth:`TaskNotifier.notify`, which sets every registered event through
its own loop. No polling and no sleeps: a claim returns as soon as work exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TaskNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()

    def waiter(self, endpoint_id: str) -> asyncio.Event:
        """An event set at the next notification for ``endpoint_id``; call in the loop.

        Register *before* looking for work, so a commit between the look and the wait
        still wakes the waiter.
        """
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.setdefault(endpoint_id, []).append(entry)
        return event

    def discard(self, endpoint_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiters = self._waiters.get(endpoint_id)
            if not waiters:
                return
            waiters[:] = [(loop, ev) for loop, ev in waiters if ev is not event]
            if not waiters:
                del self._waiters[endpoint_id]

    def has_waiters(self, endpoint_id: str) -> bool:
        with self._lock:
            return bool(self._waiters.get(endpoint_id))

    def waiting_endpoints(self) -> frozenset[str]:
        """Endpoints with a claim waiting right now: they are certainly alive."""
        with self._lock:
            return frozenset(eid for eid, waiters in self._waiters.items() if waiters)

    def notify(self, endpoint_id: str) -> None:
        """Wake every claim waiting on ``endpoint_id``. Safe from any thread."""
        with self._lock:
            waiters = self._waiters.pop(endpoint_id, [])
        for loop, event in waiters:
            # A closed loop means its claim is gone too.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
