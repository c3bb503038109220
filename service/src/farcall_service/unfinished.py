"""Which tasks accepted by this process have not finished yet, which just have, and
whose they are.

A result wait (``POST /farcall/v1/tasks/wait``, or the SDK's channel) first looks in
the database for tasks that already ended. When every task it names was accepted
here and belongs to the caller, this memory answers instead, without a database
read or a hop to a worker thread: the tasks that just finished (their records, as
recorded) and, for the others, that nothing is to be found yet.

Tasks are remembered before their submission commits (so before anyone can run
them, and forgotten again if it fails) and move to the just-finished memory once
their results have committed, before the waits are woken (both in the worker thread
that committed); a wait registers for that wake-up before it looks here. So a wait
never misses a result: either the result was moved first (the wait finds it here)
or the wait was already registered when it was announced. A deleted endpoint's tasks
are forgotten after the deletion commits, and their owners' waits are woken to look
again, in the database.

The memory holds at most ``max_entries`` unfinished tasks and ``max_finished``
finished ones (whose results together stay under ``max_finished_chars``), oldest
dropped first; a task it does not hold is simply looked up. Like the long-poll
wake-ups, it assumes one service process per database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from farcall_service.storage.interface import Task


class UnfinishedTasks:
    def __init__(self, max_entries: int = 200_000, max_finished: int = 10_000,
                 max_finished_chars: int = 32_000_000) -> None:
        self.max_entries = max_entries
        self.max_finished = max_finished
        self.max_finished_chars = max_finished_chars
        #: task id -> (owner id, endpoint id), oldest first.
        self._tasks: dict[str, tuple[str, str]] = {}
        #: task id -> its record, oldest first; and the size of their results.
        self._finished: dict[str, Task] = {}
        self._finished_chars = 0
        self._lock = threading.Lock()

    def accepted(self, owner_id: str, tasks: Iterable[tuple[str, str]]) -> None:
        """Remember ``(task id, endpoint id)`` pairs about to be committed for ``owner_id``."""
        with self._lock:
            for task_id, endpoint_id in tasks:
                self._tasks[task_id] = (owner_id, endpoint_id)
            while len(self._tasks) > self.max_entries:
                del self._tasks[next(iter(self._tasks))]

    def forget(self, task_ids: Iterable[str]) -> None:
        """Their submission failed."""
        with self._lock:
            for task_id in task_ids:
                self._tasks.pop(task_id, None)

    def finished(self, tasks: Iterable[Task]) -> None:
        """Their results have committed: keep the records for the waits to come."""
        with self._lock:
            for task in tasks:
                if self._tasks.pop(task.id, None) is None:
                    continue  # not accepted here, or dropped: waits look it up
                self._finished[task.id] = task
                self._finished_chars += _chars(task)
            while self._finished and (len(self._finished) > self.max_finished
                                      or self._finished_chars > self.max_finished_chars):
                oldest = self._finished.pop(next(iter(self._finished)))
                self._finished_chars -= _chars(oldest)

    def endpoint_deleted(self, endpoint_id: str) -> set[str]:
        """Forget the tasks a deleted endpoint's deletion failed; return their owners.

        A rare operation, so a linear sweep."""
        with self._lock:
            gone = {tid: owner for tid, (owner, eid) in self._tasks.items() if eid == endpoint_id}
            for task_id in gone:
                del self._tasks[task_id]
        return set(gone.values())

    def look(self, task_ids: Iterable[str], owner_id: str) -> list[Task] | None:
        """The tasks among ``task_ids`` that have finished, if every one of them is
        known here as ``owner_id``'s; None if the database has to say."""
        done: list[Task] = []
        with self._lock:
            for task_id in task_ids:
                entry = self._tasks.get(task_id)
                if entry is not None:
                    if entry[0] != owner_id:
                        return None
                    continue
                task = self._finished.get(task_id)
                if task is None or task.owner_id != owner_id:
                    return None
                done.append(task)
        return done

    def __len__(self) -> int:
        return len(self._tasks)


def _chars(task: Task) -> int:
    return len(task.result or "") + len(task.exception or "") + len(task.exception_data or "")
