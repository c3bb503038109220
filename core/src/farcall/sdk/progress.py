"""A one-line progress report for many tasks: how many ended well and badly, how fast.

``Client.wait`` draws one on a terminal and ``Executor(progress=True)`` on request.
A count alone hides failures ("400/400 done" when half of them raised), so the line
names both, with the rate so far and the time left at that rate::

    [###############...............] 400 tasks: 150 done, 50 failed, 200 pending; 40.0/s, ETA 5s
    [##############################] 400 tasks: 200 done, 200 failed in 9.8s (40.8/s)

Redrawn at most every ``interval`` seconds (and once at the end), so a burst of
results costs a few writes, not one per task.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import Future
from typing import Any, TextIO

WIDTH = 30


def progress_line(total: int, done: int, failed: int, elapsed: float) -> str:
    """The report of ``total`` tasks of which ``done`` succeeded and ``failed`` did
    not, ``elapsed`` seconds after the first was counted."""
    ended = done + failed
    filled = WIDTH * ended // total if total else WIDTH
    bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}]"
    rate = ended / elapsed if elapsed > 0 else 0.0
    counts = f"{total} tasks: {done} done, {failed} failed"
    if ended >= total:
        return f"{bar} {counts} in {_duration(elapsed)} ({rate:.1f}/s)"
    pending = total - ended
    eta = _duration(pending / rate) if rate > 0 else "?"
    return f"{bar} {counts}, {pending} pending; {rate:.1f}/s, ETA {eta}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts tasks as they are expected and as they end, and draws the line on
    ``stream`` (default: standard error). Safe to use from several threads."""

    def __init__(self, total: int = 0, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._started = time.monotonic()
        self._drawn_at = float("-inf")
        self._drawn = ""
        self._lock = threading.Lock()

    def expect(self, count: int = 1) -> None:
        """``count`` more tasks to wait for."""
        with self._lock:
            self.total += count
            self._draw()

    def update(self, done: int, failed: int) -> None:
        """The counts so far, as a whole (``Client.wait`` knows them)."""
        with self._lock:
            self.done, self.failed = done, failed
            self._draw()

    def future_done(self, future: Future[Any]) -> None:
        """A ``add_done_callback`` for each future counted: cancelled ones count as
        failed, since they did not run."""
        ok = not future.cancelled() and future.exception() is None
        with self._lock:
            if ok:
                self.done += 1
            else:
                self.failed += 1
            self._draw(force=self.done + self.failed >= self.total)

    def close(self) -> None:
        """Draw the final line and end it."""
        with self._lock:
            self._draw(force=True)
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = ""

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < self.interval:
            return
        line = progress_line(self.total, self.done, self.failed, now - self._started)
        # Pad over a longer previous line (its ETA or pending count may have shrunk).
        self.stream.write("\r" + line.ljust(len(self._drawn)))
        self.stream.flush()
        self._drawn, self._drawn_at = line, now
