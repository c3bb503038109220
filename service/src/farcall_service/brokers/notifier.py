"""The local broker's wake-ups: long-polls woken the moment what they wait for is
committed, within this process.

Each waiting request registers an :class:`asyncio.Future` under a key (an endpoint
id for claims, a user id for result waits); whoever commits (a route in a worker
thread, the requeue reaper) calls :meth:`Notifier.notify`, which resolves every
future registered under that key through its own loop, optionally with a value
(the recorded tasks, so a result wait can answer without reading them back). No
polling and no sleeps.

A waiter may also *offer* itself: a claim that found no work says which session it
serves and how many tasks it takes, and a submission can then :meth:`take` it and
hand it the tasks it has just stored for that session, so the claim answers without
another transaction. A taken waiter is always resolved (with ``[]`` if the
submission failed), and the claim that offered it waits for that answer even past
its own deadline (:meth:`withdraw`).

A notifier serves one process: it never has a claim of another process to take,
so :meth:`committed` and :meth:`on_unclaimed` have nothing to do.

A *listener* hears every notification of its key until it stops listening (a
channel that pushes the results of the tasks it submitted), rather than the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from farcall_service.brokers.interface import ClaimOffer, Handed, Taken, UnclaimedHandler

#: Called with each notification's value.
Listener = Callable[[Any], None]


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """``callback(*args)`` on ``loop``: from its own thread without waking it through
    its self-pipe (a system call per wake-up); raises RuntimeError once it is closed."""
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if here is loop:
        loop.call_soon(callback, *args)
    else:
        loop.call_soon_threadsafe(callback, *args)


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]]] = {}
        self._offers: dict[asyncio.Future[Any], ClaimOffer] = {}
        #: Each registered waiter's key.
        self._keys: dict[asyncio.Future[Any], str] = {}
        self._taken: set[asyncio.Future[Any]] = set()
        self._notified: dict[str, int] = {}
        self._listeners: dict[str, list[tuple[asyncio.AbstractEventLoop, Listener]]] = {}
        self._lock = threading.Lock()

    def waiter(self, key: str) -> asyncio.Future[Any]:
        """A future resolved at the next notification for ``key``; call in the loop.

        Register *before* looking, so a commit between the look and the wait still
        wakes the waiter.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._waiters.setdefault(key, []).append((loop, future))
            self._keys[future] = key
        return future

    def key_of(self, future: asyncio.Future[Any]) -> str | None:
        """The key a registered waiter waits on (None once it is gone)."""
        with self._lock:
            return self._keys.get(future)

    def listen(self, key: str, callback: Listener) -> None:
        """Call ``callback(value)`` in this loop at every notification for ``key``,
        until :meth:`unlisten`; call in the loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._listeners.setdefault(key, []).append((loop, callback))

    def unlisten(self, key: str, callback: Listener) -> None:
        with self._lock:
            listeners = self._listeners.get(key)
            if listeners is None:
                return
            # ==, not is: a bound method is a new object each time it is looked up.
            listeners[:] = [(loop, cb) for loop, cb in listeners if cb != callback]
            if not listeners:
                del self._listeners[key]

    def listening(self, key: str) -> int:
        """How many listeners ``key`` has."""
        with self._lock:
            return len(self._listeners.get(key, ()))

    def offer(self, future: asyncio.Future[Any], offer: ClaimOffer) -> None:
        """Let :meth:`take` remove this (registered) waiter and hand it a value."""
        with self._lock:
            self._offers[future] = offer

    def take(self, key: str, session: str | None = None, remote: bool = False) -> Taken | None:
        """Remove the oldest offered waiter of ``key`` (whose offer is for ``session``,
        when given); the caller must :meth:`hand` it. There is no other process's
        claim to take here, whatever ``remote`` says."""
        with self._lock:
            waiters = self._waiters.get(key) or []
            for index, (loop, future) in enumerate(waiters):
                offer = self._offers.get(future)
                if (offer is None or future.cancelled()
                        or (session is not None and offer.session != session)):
                    continue
                del self._offers[future]
                del waiters[index]
                self._taken.add(future)
                return Taken(key, offer, loop, future)
        return None

    def hand(self, taken: Taken, value: Handed | Any) -> None:
        """Resolve a taken waiter with ``value``. Safe from any thread."""
        if taken.loop is None or taken.future is None:
            return
        with contextlib.suppress(RuntimeError):
            _soon(taken.loop, _resolve, taken.future, value)

    def committed(self, taken: Taken, ok: bool) -> concurrent.futures.Future[bool] | None:
        """Nothing to tell: the claim waits in this process, which committed."""
        return None

    def on_unclaimed(self, handler: UnclaimedHandler) -> None:
        """Never called: no other process hands tasks to claims here."""

    def withdraw(self, future: asyncio.Future[Any]) -> bool:
        """End an offer; True if a submission took it first (await the value then)."""
        with self._lock:
            self._offers.pop(future, None)
            return future in self._taken

    def discard(self, key: str, future: asyncio.Future[Any]) -> None:
        with self._lock:
            self._keys.pop(future, None)
            self._offers.pop(future, None)
            self._taken.discard(future)
            waiters = self._waiters.get(key)
            if not waiters:
                return
            waiters[:] = [(loop, f) for loop, f in waiters if f is not future]
            if not waiters:
                del self._waiters[key]

    def offering(self, key: str) -> bool:
        """Whether a waiter of ``key`` has an open offer (a claim ready to be handed work)."""
        with self._lock:
            return any(future in self._offers for _loop, future in self._waiters.get(key, ()))

    def has_waiters(self, key: str) -> bool:
        with self._lock:
            return bool(self._waiters.get(key))

    def waiting_keys(self) -> frozenset[str]:
        """Keys with a waiter right now (for claims: endpoints certainly alive)."""
        with self._lock:
            return frozenset(key for key, waiters in self._waiters.items() if waiters)

    def notifications(self, key: str) -> int:
        """How many times ``key`` was notified: unchanged means nothing was committed
        for it since (``dispatching.EmptyQueues``)."""
        with self._lock:
            return self._notified.get(key, 0)

    def notify(self, key: str, value: Any = None) -> None:
        """Resolve every future waiting on ``key`` with ``value``. Safe from any thread."""
        with self._lock:
            self._notified[key] = self._notified.get(key, 0) + 1
            waiters = self._waiters.pop(key, [])
            for _loop, future in waiters:
                self._offers.pop(future, None)
            listeners = list(self._listeners.get(key, ()))
        for loop, future in waiters:
            # A closed loop means its request is gone too.
            with contextlib.suppress(RuntimeError):
                _soon(loop, _resolve, future, value)
        for loop, callback in listeners:
            with contextlib.suppress(RuntimeError):
                _soon(loop, callback, value)

    def close(self) -> None:
        """Resolve every waiter with None and drop every offer and listener."""
        with self._lock:
            waiters = [w for key_waiters in self._waiters.values() for w in key_waiters]
            self._waiters.clear()
            self._keys.clear()
            self._offers.clear()
            self._listeners.clear()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):
                _soon(loop, _resolve, future, None)
