"""Sign-in throttling: failures are charged per user, per client address and globally.

Each of the three is a bucket of failures that refills on its own (a decaying count),
and never holds more than its burst, so every wait is bounded: one refill interval
after an attack stops, however long it went on. Only failures are charged; a
correct password costs nothing.

- **per address**: one address may fail ``address_burst`` times, then once every
  ``address_refill`` seconds; a password spray across many names from one address
  is throttled here.
- **per user** (a name and the user's id are one key): past ``user_burst`` failures,
  only addresses with no failure in ``clean_after`` seconds may still try, so guesses
  from many addresses at one user are throttled while the user, from an address that
  has not been guessing, still signs in.
- **global**: ``global_burst`` failures, refilled at ``global_rate`` per second: a
  brake on attacks from many addresses; its wait is short (one refill interval).

The tables are bounded: a full (refilled) entry is dropped, and past ``max_entries``
the oldest is evicted. New entries need failures, which the global bucket paces, so
an attacker cannot cycle the tables faster than the user buckets refill.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from farcall_service.limits import FailureBuckets, address_key


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in attempt is refused before its password is checked."""

    retry_after: int
    message: str


class SignInThrottle:
    """The sign-in page's throttle; thread-safe, with an injectable clock for tests."""

    def __init__(
        self,
        *,
        user_burst: int = 10,
        user_refill: float = 60.0,
        address_burst: int = 20,
        address_refill: float = 30.0,
        global_burst: int = 200,
        global_rate: float = 5.0,
        clean_after: float = 900.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = FailureBuckets(user_burst, user_refill, max_entries)
        self.addresses = FailureBuckets(address_burst, address_refill, max_entries)
        #: Each failure stays here ``clean_after`` seconds: an address with none is clean.
        self.recent = FailureBuckets(1, clean_after, max_entries)
        self.everyone = FailureBuckets(global_burst, 1.0 / global_rate, 1)
        self.clock = clock
        self._lock = threading.Lock()

    def check(self, user_key: str, address: str) -> Refusal | None:
        """None when this attempt may check its password, else why not and how long to wait."""
        now = self.clock()
        address = address_key(address)
        with self._lock:
            wait = self.everyone.wait("", now)
            if wait > 0:
                return Refusal(_seconds(wait), "Too many failed sign-ins on this service "
                               f"right now; try again in {_seconds(wait)} s.")
            wait = self.addresses.wait(address, now)
            if wait > 0:
                return Refusal(_seconds(wait), "Too many failed sign-ins from your address; "
                               f"try again in {_seconds(wait)} s.")
            wait = self.users.wait(user_key, now)
            if wait > 0 and self.recent.failed_since(address, now):
                return Refusal(_seconds(wait), "Too many failed sign-ins for this user; try "
                               f"again in {_seconds(wait)} s.")
        return None

    def failed(self, user_key: str, address: str) -> None:
        """Charge a wrong password to the user, the address and everyone."""
        now = self.clock()
        address = address_key(address)
        with self._lock:
            self.everyone.charge("", now)
            self.addresses.charge(address, now)
            self.recent.charge(address, now)
            self.users.charge(user_key, now)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {"users": len(self.users), "addresses": len(self.addresses),
                    "recent": len(self.recent)}


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


class HashSlots:
    """At most ``slots`` password hashes at once, each holding scrypt's memory.

    An attempt waits up to ``wait`` seconds for a slot (at most ``max_waiting`` wait
    at once); otherwise it is turned away, so memory stays bounded under a flood.
    Used from the event loop, before the hash's worker thread is taken.
    """

    def __init__(self, slots: int, wait: float = 2.0, max_waiting: int = 64) -> None:
        self.slots = max(1, slots)
        self.wait = wait
        self.max_waiting = max_waiting
        self._semaphore: asyncio.Semaphore | None = None
        self._waiting = 0

    def _get(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        return self._semaphore

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[bool]:
        """Yields whether a slot was had; releases it afterwards."""
        semaphore = self._get()
        if semaphore.locked() and self._waiting >= self.max_waiting:
            yield False
            return
        self._waiting += 1
        try:
            await asyncio.wait_for(semaphore.acquire(), self.wait)
            got = True
        except asyncio.TimeoutError:
            got = False
        finally:
            self._waiting -= 1
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            semaphore.release()


class UserCodeThrottle:
    """Wrong device-flow user codes, charged per client address and in all; and new
    device logins per address.

    A user code is short (about 2.6e10 values), so guessing one must stay slow: one
    address may get ``address_burst`` wrong, then one every ``address_refill`` seconds;
    all addresses together ``global_burst``, then ``global_rate`` per second. A person
    who mistypes a code a few times is not held up. Starting a device login needs no
    secret, so one address may start ``start_burst``, then one every ``start_refill``
    seconds: a flood cannot fill the table of pending logins. Thread-safe.
    """

    def __init__(
        self,
        *,
        address_burst: int = 10,
        address_refill: float = 30.0,
        global_burst: int = 100,
        global_rate: float = 2.0,
        start_burst: int = 20,
        start_refill: float = 10.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.addresses = FailureBuckets(address_burst, address_refill, max_entries)
        self.everyone = FailureBuckets(global_burst, 1.0 / global_rate, 1)
        self.starts = FailureBuckets(start_burst, start_refill, max_entries)
        self.clock = clock
        self._lock = threading.Lock()

    def check(self, address: str) -> Refusal | None:
        """None when this address may try a code now, else why not and how long to wait."""
        now = self.clock()
        with self._lock:
            wait = self.everyone.wait("", now)
            if wait > 0:
                return Refusal(_seconds(wait), "Too many wrong codes were entered on this "
                               f"service right now; try again in {_seconds(wait)} s.")
            wait = self.addresses.wait(address_key(address), now)
            if wait > 0:
                return Refusal(_seconds(wait), "Too many wrong codes from your address; try "
                               f"again in {_seconds(wait)} s.")
        return None

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            self.everyone.charge("", now)
            self.addresses.charge(address_key(address), now)

    def start(self, address: str) -> int:
        """Count a new device login from ``address``: 0 when it may start one, else the
        whole seconds it must wait (nothing is counted then)."""
        now = self.clock()
        key = address_key(address)
        with self._lock:
            wait = self.starts.wait(key, now)
            if wait > 0:
                return _seconds(wait)
            self.starts.charge(key, now)
        return 0
