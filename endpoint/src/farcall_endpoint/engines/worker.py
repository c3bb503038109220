"""A worker process: reads tasks on stdin, writes outcomes on stdout, until EOF.

Started as ``python -m farcall_endpoint.engines.worker`` by the process engine,
directly, with a venv's interpreter, or inside a container. Frames are
``multiprocessing.connection`` messages: first the execution settings, then lists
of task documents; the worker answers ``("ready", info)`` once, then one
``("done", outcome)`` per task, in order. A ``{"cancel": [task ids]}`` frame names
queued tasks not to run: each still gets a ``done`` answer, marked ``skipped``. What
the user's code prints goes to stderr, never into the channel.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import Any


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the endpoint dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass


def main() -> int:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 0
    channel_out = os.dup(1)
    os.dup2(2, 1)  # print() in user code goes to the log
    channel_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    from multiprocessing.connection import Connection

    rx = Connection(channel_in, writable=False)
    tx = Connection(channel_out, readable=False)
    try:
        settings = rx.recv()
    except EOFError:
        return 0
    from farcall_endpoint.execution import run_task

    tx.send(("ready", {"pid": os.getpid(), "python": sys.executable,
                       "version": list(sys.version_info[:3]), "cancel": True}))
    queued: deque[dict[str, Any]] = deque()
    cancelled: set[str] = set()
    while True:
        # Read every frame that waits before each task: a cancel for a queued task
        # must be seen before that task starts.
        while not queued or rx.poll(0):
            try:
                frame = rx.recv()
            except EOFError:
                return 0
            if frame is None:
                return 0
            if isinstance(frame, dict):
                cancelled.update(frame.get("cancel", ()))
            else:
                queued.extend(frame)
        task = queued.popleft()
        task_id = task["task_id"]
        if task_id in cancelled:
            cancelled.discard(task_id)
            tx.send(("done", {"task_id": task_id, "status": "failed", "skipped": True,
                              "exception": "farcall endpoint: the task was cancelled"}))
            continue
        tx.send(("done", run_task(task, settings)))


if __name__ == "__main__":
    sys.exit(main())
