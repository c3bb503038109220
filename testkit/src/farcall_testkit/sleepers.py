"""Task functions for tests of stopping tasks (cancels, time limits): one that says
where it runs and then sleeps, one that leaves a mark if it ever runs, and a check
of whether a process still lives. The task functions import what they use, so they
run in any worker."""

from __future__ import annotations

import os


def hold(started: str, seconds: float) -> float:
    """Write this worker's pid to ``started`` (atomically), then sleep ``seconds``."""
    import os
    import time

    with open(started + ".part", "w") as file:
        file.write(str(os.getpid()))
    os.replace(started + ".part", started)
    time.sleep(seconds)
    return seconds


def mark(path: str) -> str:
    """Create ``path``: a test that finds it knows the task ran."""
    open(path, "w").close()
    return path


def alive(pid: int) -> bool:
    """Whether a process with this pid still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
