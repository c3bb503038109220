"""Which tasks accepted by this process have not finished yet, which just have, and
whose they are.

A result wait (``POST /farcall/v1/tasks/wait``, or the SDK's channel) first looks in
the database for tasks that already ended. When every task it names was accepted
here and belongs to the caller, this memory answers instead, without a database
read or a hop to a worker thread: the tasks that just finished (their records) and,
for the others, that nothing is to be found yet. Reads of a task's status
(``GET /v2/tasks/{id}``, ``/v2/batch_status``) take the records held here too.

Tasks are remembered before their submission commits (so before anyone can run
them, and forgotten again if it fails). A result from the endpoint a task was sent
to moves it to the just-finished memory the moment the report arrives, before its
transaction (:meth:`reported`), so the waits are answered while the commit is on
its way to the disk; a result not known here moves once it has committed
(:meth:`finished`). Either way the move comes before the waits are woken, and a
wait registers for that wake-up before it looks here, so a wait never misses a
result. Should the commit fail, the tasks are unfinished again (:meth:`retract`)
and the endpoint, which keeps every result until the service acknowledges it,
reports them again; should the database refuse a result it was told first (the
task had already ended: a deleted endpoint's, or a second run's), the record is
dropped (:meth:`drop`) and reads go back to the database. A deleted endpoint's
tasks are forgotten after the deletion commits, and their owners' waits are woken
to look again, in the database.

The memory holds at most ``max_entries`` unfinished tasks and ``max_finished``
finished ones (whose results together stay under ``max_finished_chars``), oldest
dropped first; a task it does not hold is simply looked up. It is a cache:
:meth:`clear` may empty it at any time, and every answer then comes from the store.
Its "not finished yet" is trusted only while the broker guarantees that every report
for this database comes through this process (``Broker.single_process``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import NamedTuple

from farcall_service.storage.interface import Outcome, Task


class _Accepted(NamedTuple):
    """What a finished record needs besides the outcome."""

    owner_id: str
    endpoint_id: str
    function_id: str
    task_group_id: str
    created_at: float


class UnfinishedTasks:
    def __init__(self, max_entries: int = 200_000, max_finished: int = 10_000,
                 max_finished_chars: int = 32_000_000) -> None:
        self.max_entries = max_entries
        self.max_finished = max_finished
        self.max_finished_chars = max_finished_chars
        #: task id -> what was accepted, oldest first.
        self._tasks: dict[str, _Accepted] = {}
        #: task id -> its record, oldest first; and the size of their results.
        self._finished: dict[str, Task] = {}
        self._finished_chars = 0
        self._lock = threading.Lock()

    def accepted(self, owner_id: str, task_group_id: str, created_at: float,
                 tasks: Iterable[tuple[str, str, str]]) -> None:
        """Remember ``(task id, endpoint id, function id)`` triples about to be
        committed for ``owner_id``."""
        with self._lock:
            for task_id, endpoint_id, function_id in tasks:
                self._tasks[task_id] = _Accepted(
                    owner_id, endpoint_id, function_id, task_group_id, created_at)
            while len(self._tasks) > self.max_entries:
                del self._tasks[next(iter(self._tasks))]

    def unfinished(self, task_id: str) -> bool:
        """Whether ``task_id`` was accepted here and has not finished (as far as this
        memory knows)."""
        with self._lock:
            return task_id in self._tasks

    def forget(self, task_ids: Iterable[str]) -> None:
        """Their submission failed."""
        with self._lock:
            for task_id in task_ids:
                self._tasks.pop(task_id, None)
                self._drop(task_id)

    def reported(self, endpoint_id: str, outcomes: Iterable[Outcome], now: float) -> list[Task]:
        """Results ``endpoint_id`` just sent, not yet committed: those for tasks
        unfinished here and sent to that endpoint are finished from now on; return
        their records, as the commit will write them (``completion_t`` is ``now``)."""
        records: list[Task] = []
        with self._lock:
            for o in outcomes:
                accepted = self._tasks.get(o.task_id)
                if accepted is None or accepted.endpoint_id != endpoint_id:
                    continue
                del self._tasks[o.task_id]
                records.append(Task(
                    o.task_id, accepted.owner_id, accepted.function_id, endpoint_id,
                    accepted.task_group_id, o.status, accepted.created_at, o.result,
                    o.exception, o.details, now, o.exception_data,
                ))
            self._keep(records)
        return records

    def retract(self, records: Iterable[Task]) -> None:
        """The commit of these :meth:`reported` records failed: unfinished again."""
        with self._lock:
            for task in records:
                if self._finished.get(task.id) is task:
                    self._drop(task.id)
                    self._tasks[task.id] = _Accepted(task.owner_id, task.endpoint_id,
                                                     task.function_id, task.task_group_id,
                                                     task.created_at)

    def drop(self, task_ids: Iterable[str]) -> None:
        """The database did not take these :meth:`reported` results: let it answer."""
        with self._lock:
            for task_id in task_ids:
                self._drop(task_id)

    def finished(self, tasks: Iterable[Task]) -> None:
        """Their results have committed: keep the records for the waits to come."""
        with self._lock:
            self._keep([task for task in tasks if self._tasks.pop(task.id, None) is not None])

    def endpoint_deleted(self, endpoint_id: str) -> set[str]:
        """Forget the tasks a deleted endpoint's deletion failed; return their owners.

        A rare operation, so a linear sweep."""
        with self._lock:
            gone = {tid: a.owner_id for tid, a in self._tasks.items()
                    if a.endpoint_id == endpoint_id}
            for task_id in gone:
                del self._tasks[task_id]
        return set(gone.values())

    def look(self, task_ids: Iterable[str], owner_id: str) -> list[Task] | None:
        """The tasks among ``task_ids`` that have finished, if every one of them is
        known here as ``owner_id``'s; None if the database has to say."""
        done: list[Task] = []
        with self._lock:
            for task_id in task_ids:
                accepted = self._tasks.get(task_id)
                if accepted is not None:
                    if accepted.owner_id != owner_id:
                        return None
                    continue
                task = self._finished.get(task_id)
                if task is None or task.owner_id != owner_id:
                    return None
                done.append(task)
        return done

    def records(self, task_ids: Iterable[str]) -> dict[str, Task]:
        """The finished records held here among ``task_ids``, whoever's they are:
        a read takes them over the database's, which may not have them yet."""
        with self._lock:
            return {tid: task for tid in task_ids if (task := self._finished.get(tid))}

    def expire(self, before: float) -> None:
        """Forget the finished records of tasks that ended before ``before``: the
        purge is about to delete them (``purging``). A sweep of at most
        ``max_finished`` records, once per purge."""
        with self._lock:
            for task_id in [tid for tid, task in self._finished.items()
                            if task.completion_t is not None and task.completion_t < before]:
                self._drop(task_id)

    def clear(self) -> None:
        """Forget everything: from now on the store answers for these tasks."""
        with self._lock:
            self._tasks.clear()
            self._finished.clear()
            self._finished_chars = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def _keep(self, tasks: list[Task]) -> None:
        for task in tasks:
            self._drop(task.id)
            self._finished[task.id] = task
            self._finished_chars += _chars(task)
        while self._finished and (len(self._finished) > self.max_finished
                                  or self._finished_chars > self.max_finished_chars):
            self._drop(next(iter(self._finished)))

    def _drop(self, task_id: str) -> None:
        task = self._finished.pop(task_id, None)
        if task is not None:
            self._finished_chars -= _chars(task)


def _chars(task: Task) -> int:
    return len(task.result or "") + len(task.exception or "") + len(task.exception_data or "")
