"""Recording reported results: with the next submission, or on their own soon after.

A result is told to the waits the moment its report arrives (``dispatching.report``), so
its commit only has to come before the endpoint's acknowledgement. Every commit
waits for the disk, and a run-and-wait loop made two in a row per round trip: the
result's, then the next submission's, which waited for the write lock meanwhile.
So a report waits up to ``FOLD_DELAY`` seconds for a submission and is recorded in
its transaction (one commit for both), else in a transaction of its own, together
with the other reports waiting then. That is for a database with one writer at a
time (SQLite); on one that commits concurrent transactions side by side
(PostgreSQL) a report waits for nobody: it is committed in the next turn of the loop
with whatever other reports came in that turn.

A transaction that fails with reports folded in is tried again without them, and
each report alone, so one write's failure is not another's. A report whose commit
fails is unfinished again in the memory (``unfinished.retract``) and its endpoint,
which keeps every result until it is acknowledged, reports it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from farcall_service.storage.interface import RecordedOutcomes, Report, Task

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

#: Seconds a report waits for a submission to share its commit with.
FOLD_DELAY = 0.005


@dataclass(frozen=True)
class Pending:
    """A report waiting for its commit, and who waits for its outcome."""

    report: Report
    #: The records told to waits before the commit (``unfinished.reported``).
    told: list[Task]
    done: asyncio.Future[RecordedOutcomes]


class Recorder:
    """Reports waiting to be committed; everything but :func:`commit_alone` and
    :func:`settle` (worker threads) runs on the event loop."""

    def __init__(self, lc: TaskLifecycle) -> None:
        self._lc = lc
        #: Seconds a report waits for a submission to share its commit with.
        self.delay = FOLD_DELAY if lc.ctx.store.one_writer else 0.0
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, report: Report, told: list[Task],
               after: set[asyncio.Future[Any]]) -> asyncio.Future[RecordedOutcomes]:
        """Commit ``report`` once every future in ``after`` is done (the submissions
        of its tasks); the future returned has what was recorded."""
        item = Pending(report, told, asyncio.get_running_loop().create_future())
        if not after:
            self._add(item)
            return item.done
        left = len(after)

        def one_done(_future: asyncio.Future[Any]) -> None:
            nonlocal left
            left -= 1
            if left == 0:
                self._add(item)

        for future in after:
            future.add_done_callback(one_done)
        return item.done

    def take(self) -> list[Pending]:
        """The reports waiting now, for a submission's transaction to record."""
        taken, self._pending = self._pending, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return taken

    def flush(self) -> None:
        """Commit the waiting reports now, in a transaction of their own."""
        taken = self.take()
        if taken:
            self._lc.ctx.start_in_thread(commit_alone, self._lc, taken)

    def _add(self, item: Pending) -> None:
        self._pending.append(item)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)


def commit_alone(lc: TaskLifecycle, pending: list[Pending]) -> None:
    """Record ``pending`` in one transaction, or each alone if that fails."""
    if not pending:
        return
    try:
        recorded: list[RecordedOutcomes | BaseException] = list(
            lc.ctx.store.record_reports([item.report for item in pending]))
    except BaseException as exc:  # each report answered, whatever happened
        if len(pending) > 1:
            for item in pending:
                commit_alone(lc, [item])
            return
        recorded = [exc]
    for item, outcome in zip(pending, recorded, strict=True):
        settle(lc, item, outcome)


def settle(lc: TaskLifecycle, item: Pending, outcome: RecordedOutcomes | BaseException) -> None:
    """After a report's commit (or its failure): keep the memory of finished tasks
    right, wake the owners' waits, and answer the endpoint."""
    if isinstance(outcome, BaseException):
        lc.memory.retract(item.told)  # the endpoint reports them again
    else:
        refused = {task.id for task in item.told} - set(outcome.recorded)
        if refused:
            lc.memory.drop(refused)
            log.warning("endpoint %s reported %d result(s) for tasks that had already "
                        "ended or were gone; waits on them had been told before the "
                        "commit", item.report.endpoint_id, len(refused))
        lc.memory.finished(outcome.finished)  # before the wake-up
        told = {task.id for task in item.told}
        wake_owners(lc, [task for task in outcome.finished if task.id not in told])
        wake_owners(lc, [task for task in outcome.finished if task.id in told], settled=True)
        if outcome.streamed:
            lc.outbox_filled()
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
        item.done.get_loop().call_soon_threadsafe(_resolve, item.done, outcome)


def wake_owners(lc: TaskLifecycle, tasks: list[Task], settled: bool = False) -> None:
    """Tell the owners' waits and followers (the broker's ``results``). ``settled``:
    told before their commit, committed now (``ResultWakeups.notify_settled``, where
    the broker has it)."""
    by_owner: dict[str, list[Task]] = {}
    for task in tasks:
        by_owner.setdefault(task.owner_id, []).append(task)
    results = lc.broker.results
    notify = getattr(results, "notify_settled", results.notify) if settled else results.notify
    for owner, owned in by_owner.items():
        notify(owner, owned)  # answers their SDKs' waits


def _resolve(done: asyncio.Future[RecordedOutcomes],
             outcome: RecordedOutcomes | BaseException) -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def track(in_flight: dict[str, asyncio.Future[Any]], task_ids: list[str],
          work: asyncio.Future[Any]) -> None:
    """Map each of ``task_ids`` to ``work`` in ``in_flight`` until it is done: a commit
    that must come after it waits for it."""
    for task_id in task_ids:
        in_flight[task_id] = work
    work.add_done_callback(partial(_untrack, in_flight, task_ids))


def _untrack(in_flight: dict[str, asyncio.Future[Any]], task_ids: list[str],
             work: asyncio.Future[Any]) -> None:
    for task_id in task_ids:
        if in_flight.get(task_id) is work:
            del in_flight[task_id]
