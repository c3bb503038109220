"""Which tasks accepted by this process have not finished yet, and whose they are.

A result wait (``POST /farcall/v1/tasks/wait``) first looks in the database for tasks
that already ended; when every task it names was accepted here, belongs to the
caller and has not been reported, that look would find nothing, and this memory
says so without a database read or a hop to a worker thread.

Tasks are remembered before their submission commits (so before anyone can run
them, and forgotten again if it fails) and forgotten once their results have
committed, before the waits are woken (both in the worker thread that committed);
a wait registers for that wake-up before it looks here. So a wait never misses a result: either the result was forgotten first
(the wait then reads the database, where it is committed) or the wait was already
registered when it was announced. A deleted endpoint's tasks are forgotten after
the deletion commits, and their owners' waits are woken to look again.

The memory holds at most ``max_entries`` tasks, oldest dropped first; a task it
does not hold is simply looked up. Like the long-poll wake-ups, it assumes one
service process per database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class UnfinishedTasks:
    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        #: task id -> (owner id, endpoint id), oldest first.
        self._tasks: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def accepted(self, owner_id: str, tasks: Iterable[tuple[str, str]]) -> None:
        """Remember ``(task id, endpoint id)`` pairs about to be committed for ``owner_id``."""
        with self._lock:
            for task_id, endpoint_id in tasks:
                self._tasks[task_id] = (owner_id, endpoint_id)
            while len(self._tasks) > self.max_entries:
                del self._tasks[next(iter(self._tasks))]

    def finished(self, task_ids: Iterable[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                self._tasks.pop(task_id, None)

    def endpoint_deleted(self, endpoint_id: str) -> set[str]:
        """Forget the tasks a deleted endpoint's deletion failed; return their owners.

        A rare operation, so a linear sweep."""
        with self._lock:
            gone = {tid: owner for tid, (owner, eid) in self._tasks.items() if eid == endpoint_id}
            for task_id in gone:
                del self._tasks[task_id]
        return set(gone.values())

    def all_unfinished(self, task_ids: Iterable[str], owner_id: str) -> bool:
        """True if every task is known here as ``owner_id``'s and not yet finished."""
        with self._lock:
            for task_id in task_ids:
                entry = self._tasks.get(task_id)
                if entry is None or entry[0] != owner_id:
                    return False
        return True

    def __len__(self) -> int:
        return len(self._tasks)
