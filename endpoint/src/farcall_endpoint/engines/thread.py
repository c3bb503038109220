"""The ``thread`` engine: tasks run in threads of the endpoint process.

For functions that release the GIL or wait on I/O, and for tests. A thread cannot
be killed, so a task over its time limit is reported failed and its thread is
abandoned (a fresh thread takes its place); a task that kills the process kills
the endpoint. Execution environments need the process engine.

For the same reason a cancelled task that already runs cannot be stopped: it is
reported cancelled at once, its thread is abandoned and replaced, and its result is
discarded when it ends. Queued tasks that are cancelled never run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from farcall_endpoint.engines.deadlines import Deadlines
from farcall_endpoint.engines.interface import (
    Engine,
    EngineContext,
    EngineStatus,
    no_containers,
)
from farcall_endpoint.tasks import Task, cancelled, failure

log = logging.getLogger(__name__)


class ThreadEngine(Engine):
    """Options: ``workers`` (threads, default 4)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.workers = int(options.get("workers") or 4)
        unknown = set(options) - {"workers"}
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown option(s) of the thread engine: {names}")
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Task, float]] = {}
        #: Tasks in the queue, by id: a cancelled one is removed here and skipped there.
        self._queued: dict[str, Task] = {}
        self._threads = 0
        self._stopping = False
        self._context: EngineContext | None = None
        self._deadlines: Deadlines | None = None

    def start(self, context: EngineContext) -> None:
        self._context = context
        self._deadlines = Deadlines(self._expired)
        for _ in range(self.workers):
            self._add_thread()

    def _add_thread(self) -> None:
        with self._lock:
            self._threads += 1
        threading.Thread(target=self._serve, name="farcall-thread-worker", daemon=True).start()

    def _serve(self) -> None:
        assert self._context is not None and self._deadlines is not None
        while not self._stopping:
            task = self._queue.get()
            if task is None:
                break
            with self._lock:
                if self._queued.pop(task.task_id, None) is None:
                    continue  # cancelled while queued, and reported then
                self._running[task.task_id] = (task, time.time())
            self._deadlines.arm(task.task_id, task.timeout)
            outcome = self._context.run(task.wire(), self._context.execution)
            self._deadlines.disarm(task.task_id)
            with self._lock:
                current = self._running.pop(task.task_id, None) is not None
            if not current:
                break  # over its time limit or cancelled, reported then; a replacement serves
            self._context.deliver(outcome)
        with self._lock:
            self._threads -= 1

    def _expired(self, task_id: str) -> None:
        with self._lock:
            entry = self._running.pop(task_id, None)
        if entry is None or self._context is None:
            return
        task, started = entry
        self._context.deliver(failure(
            task.task_id,
            f"farcall endpoint: the task exceeded its time limit of {task.timeout:g} s; the "
            "thread engine cannot stop it, so its thread was abandoned and replaced",
            task.received, started=started))
        self._add_thread()

    def submit(self, tasks: Sequence[Task]) -> None:
        assert self._context is not None
        for task in tasks:
            refusal = no_containers("thread", task)
            if refusal:
                self._context.deliver(failure(task.task_id, refusal, task.received))
            else:
                with self._lock:
                    self._queued[task.task_id] = task
                self._queue.put(task)

    def cancel(self, task_ids: Sequence[str]) -> list[str]:
        """Queued tasks are dropped; running ones cannot be stopped (see the module)."""
        assert self._context is not None
        dropped: list[Task] = []
        abandoned: list[tuple[Task, float]] = []
        with self._lock:
            for task_id in dict.fromkeys(task_ids):
                task = self._queued.pop(task_id, None)
                if task is not None:
                    dropped.append(task)
                    continue
                entry = self._running.pop(task_id, None)
                if entry is not None:
                    abandoned.append(entry)
        for task in dropped:
            self._context.deliver(cancelled(task, "it had not started"))
        for task, started in abandoned:
            log.warning("task %s was cancelled while running: the thread engine cannot stop "
                        "running tasks (use the process engine), so it runs on in its thread "
                        "and its result will be discarded", task.task_id)
            self._context.deliver(cancelled(
                task, "the thread engine cannot stop a running task: it runs on at the "
                "endpoint and its result will be discarded", started=started))
            self._add_thread()
        return [task.task_id for task, _ in abandoned]

    def capacity(self) -> int:
        return self.workers * 2

    def status(self) -> EngineStatus:
        with self._lock:
            busy, queued = len(self._running), len(self._queued)
        return EngineStatus(self.workers, max(0, self.workers - busy), queued)

    def stop(self) -> None:
        self._stopping = True
        for _ in range(self._threads + 1):
            self._queue.put(None)
        if self._deadlines is not None:
            self._deadlines.stop()
