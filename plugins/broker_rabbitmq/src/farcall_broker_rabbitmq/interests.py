"""Which keyed wake-ups this process hears: only those someone here waits for.

A results wake-up matters only to a process where a wait or a channel of that owner
is; a claim's offer only to one that submits to its endpoint. They go on the direct
exchange ``farcall.wakeups.keyed`` with the routing key ``{channel}.{key}``
(``results.{owner}``, ``offer.{endpoint}``), and each process
binds its queue to the keys it wants: at the first waiter, listener or submission
for a key, until ``LINGER`` seconds after the last one went. A process with nobody
waiting then reads none of its peers' wake-ups, and none of its own.

A wake-up published before the binding is in place does not come here, so once it
is, the keys' waiters and listeners here are told "look again, in the database"
(``bound``): what was committed before then is there to be read, and anything later
comes through the binding. (A ``tasks`` wake-up goes to every process: a claim
told to look again for nothing would read the database for nothing.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

#: Seconds a key stays bound after the last wait, listener or submission for it.
LINGER = 60.0


class Interests:
    """This process's bound keys; :meth:`want` from any thread.

    ``bind``/``unbind`` run on the connection's loop (``submit`` puts a coroutine
    there); ``wanted(key)`` says whether something here still waits on ``key``;
    ``bound(key)`` is called once a binding is in place.
    """

    def __init__(self, submit: Callable[[Coroutine[Any, Any, None]], Any],
                 bind: Callable[[str], Coroutine[Any, Any, None]],
                 unbind: Callable[[str], Coroutine[Any, Any, None]],
                 wanted: Callable[[str], bool], bound: Callable[[str], None],
                 linger: float = LINGER) -> None:
        self._submit = submit
        self._bind = bind
        self._unbind = unbind
        self._wanted = wanted
        self._bound_callback = bound
        self.linger = linger
        #: Key -> when it was last wanted (monotonic), once bound.
        self._bound: dict[str, float] = {}
        self._binding: set[str] = set()
        self._lock = threading.Lock()
        #: Binds and unbinds one at a time, in order, so an unbind never overtakes
        #: the bind that follows it (created on the connection's loop).
        self._order: asyncio.Lock | None = None

    def want(self, key: str) -> None:
        """Something here waits on ``key``: bind it if it is not bound yet."""
        now = time.monotonic()
        with self._lock:
            if key in self._bound:
                self._bound[key] = now
                return
            if key in self._binding:
                return
            self._binding.add(key)
        try:
            self._submit(self._bind_now(key))
        except RuntimeError:  # stopped
            with self._lock:
                self._binding.discard(key)

    def is_bound(self, key: str) -> bool:
        with self._lock:
            return key in self._bound

    def forget(self) -> None:
        """The queue is gone (a stop): nothing is bound any more."""
        with self._lock:
            self._bound.clear()
            self._binding.clear()

    def _ordered(self) -> asyncio.Lock:
        if self._order is None:
            self._order = asyncio.Lock()
        return self._order

    async def _bind_now(self, key: str) -> None:
        try:
            async with self._ordered():
                await self._bind(key)
        except Exception as exc:  # the next waiter tries again
            log.debug("could not bind %s: %s: %s", key, type(exc).__name__, exc)
            with self._lock:
                self._binding.discard(key)
            return
        with self._lock:
            self._binding.discard(key)
            self._bound[key] = time.monotonic()
        self._bound_callback(key)

    async def sweep_forever(self) -> None:
        """Unbind, every ``linger / 2`` seconds, keys nobody here wanted for
        ``linger`` seconds and nothing waits on now (on the connection's loop)."""
        while True:
            await asyncio.sleep(self.linger / 2)
            await self.sweep()

    async def sweep(self) -> None:
        cutoff = time.monotonic() - self.linger
        with self._lock:
            stale = [key for key, last in self._bound.items()
                     if last < cutoff and not self._wanted(key)]
            for key in stale:
                del self._bound[key]
        for key in stale:
            with contextlib.suppress(Exception):  # gone with the queue anyway
                async with self._ordered():
                    await self._unbind(key)
