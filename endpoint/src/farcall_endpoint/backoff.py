"""Exponential backoff with jitter for the endpoint's threads, cut short when the
endpoint stops."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """``sleep(seconds)`` waits, returning early when the endpoint stops
    (:meth:`farcall_endpoint.ledger.Ledger.wait_stop`)."""

    def __init__(self, sleep: Callable[[float], object], most: float, first: float = 0.1) -> None:
        self.sleep, self.most, self.first = sleep, most, first
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next_delay(self) -> float:
        delay = min(self.most, self.delay) * random.uniform(0.5, 1.0)
        self.delay = min(self.most, self.delay * 2)
        return delay

    def wait(self) -> None:
        self.sleep(self.next_delay())


def short(exc: BaseException) -> str:
    """The first line of an error, for the log line that says why a thread backs off.
    Whole: a cut line loses its end, where the cause's name is."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
