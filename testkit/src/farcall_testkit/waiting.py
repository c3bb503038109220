"""Waiting in tests for something that happens elsewhere (a process, a thread, a
server), failing with a message instead of hanging."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition",
             every: float = 0.05) -> T:
    """The first true value of ``predicate()``, asked every ``every`` seconds; fails
    the test, naming ``what``, when none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(every)
