"""A base for engines built on an existing executor that returns futures (Parsl, Dask).

Subclasses say how to start the executor, how to hand it one call of
:func:`farcall_endpoint.execution.run_task`, and how many workers it has; this
class turns futures into outcomes, fails tasks whose time limit passes (the late
result is dropped: such executors cannot stop one task) and refuses execution
environments, which need the process engine. A cancelled task is reported cancelled
at once; :meth:`FuturesEngine.cancel_calls` says which the executor stopped, and the
late result of any other is dropped the same way. An engine whose executor cannot
cancel a call at all sets ``hold_back``: the executor is then handed at most
``capacity()`` tasks, and the others wait here, where a cancel drops them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

from farcall_endpoint.engines.deadlines import Deadlines
from farcall_endpoint.engines.interface import (
    Engine,
    EngineContext,
    EngineStatus,
    no_containers,
)
from farcall_endpoint.tasks import Task, cancelled, failure

log = logging.getLogger(__name__)


class FuturesEngine(Engine):
    #: Used in messages: "the parsl engine ...".
    name = "futures"
    #: Keep tasks beyond ``capacity()`` here rather than in the executor (see the module).
    hold_back: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Task] = {}
        self._futures: dict[str, Future[Any]] = {}
        #: Ids of the tasks handed to the executor (the rest of ``_inflight`` waits).
        self._handed: set[str] = set()
        self._waiting: deque[Task] = deque()
        self._settings: dict[str, Any] = {}
        self._context: EngineContext | None = None
        self._deadlines: Deadlines | None = None
        self._workers = 1

    # -- what subclasses provide -----------------------------------------------------------

    @abstractmethod
    def start_executor(self, context: EngineContext) -> None: ...

    @abstractmethod
    def submit_call(self, task: Task, settings: dict[str, Any]) -> Future[Any]:
        """Start ``run_task(task.wire(), settings)`` on the executor."""

    @abstractmethod
    def worker_count(self) -> int:
        """Workers (or worker slots) the executor has right now."""

    @abstractmethod
    def stop_executor(self) -> None: ...

    def cancel_calls(self, futures: dict[str, Future[Any]]) -> list[str]:
        """Ask the executor to stop these calls, by task id; return the ids it could not
        stop (running ones). This default uses ``Future.cancel()``, which stops a call
        only before it starts."""
        unstoppable = []
        for task_id, future in futures.items():
            try:
                stopped = future.cancel()
            except Exception:
                stopped = False
            if not stopped:
                unstoppable.append(task_id)
        return unstoppable

    # -- Engine ----------------------------------------------------------------------------

    def start(self, context: EngineContext) -> None:
        self._context = context
        self._settings = dict(context.execution)
        self._deadlines = Deadlines(self._expired)
        self.start_executor(context)
        self._workers = self.worker_count()

    def submit(self, tasks: Sequence[Task]) -> None:
        assert self._context is not None
        for task in tasks:
            refusal = no_containers(self.name, task)
            if refusal:
                self._context.deliver(failure(task.task_id, refusal, task.received))
                continue
            with self._lock:
                self._inflight[task.task_id] = task
                if self.hold_back and (self._waiting or len(self._handed) >= self.capacity()):
                    self._waiting.append(task)
                    continue
                self._handed.add(task.task_id)
            self._hand_over(task)

    def _hand_over(self, task: Task) -> None:
        """Give the executor a task already counted in ``_handed``."""
        assert self._deadlines is not None
        self._deadlines.arm(task.task_id, task.timeout)
        try:
            future = self.submit_call(task, self._settings)
        except Exception as exc:
            self._finish(task, None, exc, feed=False)  # the caller's loop feeds on
            return
        with self._lock:
            if task.task_id in self._inflight:
                self._futures[task.task_id] = future
        future.add_done_callback(functools.partial(self._done, task))

    def _feed(self) -> None:
        """Hand waiting tasks over while the executor has room (``hold_back`` only)."""
        while self.hold_back:
            with self._lock:
                if not self._waiting or len(self._handed) >= self.capacity():
                    return
                task = self._waiting.popleft()
                self._handed.add(task.task_id)
            self._hand_over(task)

    def _done(self, task: Task, future: Future[Any]) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:
            self._finish(task, None, exc)
        else:
            self._finish(task, outcome, None)

    def _finish(self, task: Task, outcome: Any, exc: BaseException | None,
                feed: bool = True) -> None:
        assert self._context is not None and self._deadlines is not None
        with self._lock:
            self._futures.pop(task.task_id, None)
            self._handed.discard(task.task_id)
            if self._inflight.pop(task.task_id, None) is None:
                return
        if feed:
            self._feed()
        if not self._deadlines.disarm(task.task_id):
            return
        if exc is not None or not isinstance(outcome, dict):
            what = f"{type(exc).__name__}: {exc}" if exc is not None else repr(outcome)[:200]
            outcome = failure(task.task_id,
                              f"farcall endpoint: the {self.name} engine could not run the task "
                              f"(its worker may have died): {what}", task.received)
        self._context.deliver(outcome)

    def _expired(self, task_id: str) -> None:
        with self._lock:
            task = self._inflight.pop(task_id, None)
            self._futures.pop(task_id, None)
            self._handed.discard(task_id)
        if task is None or self._context is None:
            return
        self._feed()
        self._context.deliver(failure(
            task_id,
            f"farcall endpoint: the task exceeded its time limit of {task.timeout:g} s (counted "
            f"from its hand-over to the {self.name} engine, which cannot stop a single task; "
            "its late result will be ignored)",
            task.received, started=time.time() - (task.timeout or 0)))

    def cancel(self, task_ids: Sequence[str]) -> list[str]:
        """Each held task is reported cancelled now; what the executor could not stop
        runs on and its result is dropped."""
        assert self._context is not None and self._deadlines is not None
        with self._lock:
            held = (self._inflight.pop(task_id, None) for task_id in dict.fromkeys(task_ids))
            tasks = [task for task in held if task is not None]
            futures = {t.task_id: self._futures.pop(t.task_id) for t in tasks
                       if t.task_id in self._futures}
            waiting = {t.task_id for t in tasks if t.task_id not in self._handed}
            if waiting:
                self._waiting = deque(t for t in self._waiting if t.task_id not in waiting)
            self._handed.difference_update(t.task_id for t in tasks)
        if not tasks:
            return []
        for task in tasks:
            self._deadlines.disarm(task.task_id)
        unstoppable = self.cancel_calls(futures) if futures else []
        # A task handed over but without its future yet is as unstoppable as a running one.
        unstoppable += [t.task_id for t in tasks
                        if t.task_id not in waiting and t.task_id not in futures]
        self._feed()
        for task in tasks:
            note = ("it had not started" if task.task_id in waiting else
                    f"the {self.name} engine could not stop it: it runs on and its result "
                    "will be discarded" if task.task_id in unstoppable else "it was stopped")
            self._context.deliver(cancelled(task, note))
        if unstoppable:
            log.warning("the %s engine could not stop cancelled task(s) %s (the process "
                        "engine can): they run on and their results will be discarded",
                        self.name, ", ".join(unstoppable))
        return unstoppable

    def capacity(self) -> int:
        return max(4, 2 * self._workers)

    def status(self) -> EngineStatus:
        """Asks the executor, from the heartbeat thread only (executors' control
        channels are rarely thread-safe); ``capacity`` uses the last answer."""
        total = self._workers = self.worker_count()
        with self._lock:
            inflight = len(self._inflight)
        return EngineStatus(total, max(0, total - inflight), max(0, inflight - total))

    def stop(self) -> None:
        if self._deadlines is not None:
            self._deadlines.stop()
        self.stop_executor()
