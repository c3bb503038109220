"""Moving tasks to endpoints and their results back: long-poll claims, results
reports and the requeue reaper (the lifecycle's middle steps).

See "The endpoint hand-off protocol" in docs/service.md for the contract.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from functools import partial
from typing import TYPE_CHECKING

from farcall.blob_refs import parse_reference
from starlette.concurrency import run_in_threadpool

from farcall_service.brokers.interface import ClaimOffer, Handed, TaskWakeups
from farcall_service.recording import track, wake_owners
from farcall_service.storage.interface import ClaimedTask, Outcome, RecordedOutcomes, Report

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)


async def claim(
    lc: TaskLifecycle, endpoint_id: str, session: str, max_tasks: int, wait: float,
    cancelled: list[str] | None = None,
) -> list[ClaimedTask]:
    """Claim queued tasks, waiting up to ``wait`` seconds for some to be committed.

    While it waits, the claim offers itself to submissions (see ``brokers.notifier``):
    a submission for this endpoint then stores its tasks as claimed by ``session``
    and hands them over directly.

    With ``cancelled``, the claim also takes the notices of tasks the endpoint held
    that were cancelled (``TaskStore.take_cancels``, read when :class:`CancelMarks`
    says one may wait) into that list, and returns as soon as there are some: a
    cancel notifies the endpoint like a submission, so a waiting claim hears of it at
    once. A claim of no task (``max_tasks`` 0) only does that.
    """
    ctx, claims, empty_queues = lc.ctx, lc.broker.tasks, lc.empty_queues
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, ctx.settings.max_claim_wait)
    if max_tasks < 1:
        return await _cancels_only(lc, endpoint_id, deadline, cancelled)
    while True:
        woken = claims.waiter(endpoint_id)
        try:
            if empty_queues.known_empty(endpoint_id, session):
                tasks = []  # the usual re-claim after a hand-off: no database, no thread hop
            else:
                seen = claims.notifications(endpoint_id)  # before the read, not after
                tasks = await ctx.in_thread(
                    ctx.store.claim, endpoint_id, session, max_tasks, time.time()
                )
                if not tasks:
                    empty_queues.found_empty(endpoint_id, session, seen)
            if cancelled is not None and lc.cancel_marks.may_have(endpoint_id):
                cancelled.extend(await take_cancels(lc, endpoint_id))
            remaining = deadline - loop.time()
            if tasks or cancelled or remaining <= 0:
                return tasks
            claims.offer(woken, ClaimOffer(session, max_tasks, remaining))
            await asyncio.wait({woken}, timeout=remaining)
            # Withdrawn atomically: a submission either took the offer before this
            # line (its tasks are ours and on their way) or can no longer take it.
            if claims.withdraw(woken):
                handed: Handed = await woken  # resolved, even past the deadline
                if handed.tasks:
                    return adopt(lc, endpoint_id, handed)
            elif not woken.done():
                return []  # the deadline passed
        finally:
            claims.discard(endpoint_id, woken)


def adopt(lc: TaskLifecycle, endpoint_id: str, handed: Handed) -> list[ClaimedTask]:
    """The tasks handed to a claim of ``endpoint_id``. A submission in another process
    handed them (``committed`` is set): they are remembered here as if accepted here
    (their results are told before they are recorded) and recorded only after that
    submission's commit, as ``accepting`` does for its own."""
    if handed.committed is not None:
        ids = [task.id for task in handed.tasks]
        lc.memory.accepted(handed.owner_id, handed.task_group_id, handed.created_at,
                           ((task.id, endpoint_id, task.function_id) for task in handed.tasks))
        committed = asyncio.wrap_future(handed.committed)
        committed.add_done_callback(partial(_forget_if_failed, lc, ids))
        track(lc.submissions_in_flight, ids, committed)
    return handed.tasks


def _forget_if_failed(lc: TaskLifecycle, ids: list[str],
                      committed: asyncio.Future[bool | None]) -> None:
    if not committed.cancelled() and committed.result() is False:
        lc.memory.forget(ids)


async def _cancels_only(lc: TaskLifecycle, endpoint_id: str, deadline: float,
                        cancelled: list[str] | None) -> list[ClaimedTask]:
    """A claim of no task: the endpoint's workers are all busy, and it asks only which
    of its tasks were cancelled (waiting until ``deadline`` for one)."""
    if cancelled is None:
        return []
    claims, loop = lc.broker.tasks, asyncio.get_running_loop()
    while True:
        woken = claims.waiter(endpoint_id)
        try:
            if lc.cancel_marks.may_have(endpoint_id):
                cancelled.extend(await take_cancels(lc, endpoint_id))
            remaining = deadline - loop.time()
            if cancelled or remaining <= 0:
                return []
            await asyncio.wait({woken}, timeout=remaining)
            if not woken.done():
                return []
        finally:
            claims.discard(endpoint_id, woken)


async def take_cancels(lc: TaskLifecycle, endpoint_id: str) -> list[str]:
    """The endpoint's cancel notices, taken from the store (``TaskStore.take_cancels``)."""
    marks = lc.cancel_marks
    seen = marks.notifications(endpoint_id)  # before the read, not after
    taken = await lc.ctx.in_thread(lc.ctx.store.take_cancels, endpoint_id)
    marks.looked(endpoint_id, seen)
    return taken


async def report(lc: TaskLifecycle, endpoint_id: str, session: str, outcomes: list[Outcome],
                 now: float, shared_queue: bool = False) -> RecordedOutcomes:
    """Results from ``endpoint_id``: told to the waits now, recorded soon after
    (``recording``); returns what was recorded, once it has committed.

    Results are committed before they are acknowledged, and a result for a task that
    is already done is acknowledged again without being recorded twice, so an
    endpoint may safely resend after any failure.
    """
    # A result told before it committed must commit before any other result for
    # the same task, or the waits and the database could keep different ones.
    in_flight = lc.reports_in_flight
    earlier = {in_flight[o.task_id] for o in outcomes if o.task_id in in_flight}
    # A cancel on its way first: its task is then no longer told to the waits.
    cancels = lc.cancels_in_flight
    earlier |= {cancels[o.task_id] for o in outcomes if o.task_id in cancels}
    if earlier:
        await asyncio.wait(earlier)
    # Told to the waits now, before the commit: the endpoint keeps each result until
    # it is acknowledged, after the commit, so a result told is never lost
    # (``farcall_service.unfinished``, ``farcall_service.recording``).
    # With other processes, told only once recorded: a result kept in the blob store
    # (a wait there that hears it fetches the bytes from the store, which must have
    # the commit by then), and any from a queue every process consumes (a second
    # report of the task, a re-run's, may reach another process and commit first).
    if lc.broker.single_process:
        early = outcomes
    elif shared_queue:
        early = []
    else:
        early = [o for o in outcomes if parse_reference(o.result) is None]
    told = lc.memory.reported(endpoint_id, early, now)
    wake_owners(lc, told)
    # A task handed to its claim before its submission committed: its result is
    # committed after the submission (before, it would be refused as unknown).
    submissions = {lc.submissions_in_flight[o.task_id] for o in outcomes
                   if o.task_id in lc.submissions_in_flight}
    work = lc.recorder.record(Report(endpoint_id, session, outcomes, now), told, submissions)
    if told:
        track(in_flight, [task.id for task in told], work)
        # The commit and its aftermath outlive a closed channel in any case.
        work = asyncio.shield(work)
    recorded = await work
    if recorded.rejected and not shared_queue and not lc.broker.single_process:
        recorded = await _record_when_visible(lc, Report(endpoint_id, session, outcomes, now),
                                              recorded)
    return recorded


#: Seconds after its creation (its id is time-ordered) a task unknown to the store
#: may still be on its way there: its submission's commit, in another process.
COMMIT_WINDOW = 10.0


async def _record_when_visible(lc: TaskLifecycle, report: Report,
                               recorded: RecordedOutcomes) -> RecordedOutcomes:
    """Record again, after short waits, results refused as unknown whose tasks are
    young enough to be still uncommitted.

    A claim is handed its tasks before their submission commits (``accepting``), and
    with several processes its endpoint may report through another process than the
    submission's (a reconnection, a balancer), which can then read the database
    before the commit. Refusing would cost the task a requeue and a second run; a
    forged or stale id costs only this report's answer a wait.
    """
    delay, started = 0.002, time.monotonic()
    while True:
        refused = set(recorded.rejected)
        now = time.time()
        young = [o for o in report.outcomes
                 if o.task_id in refused and _age(o.task_id, now) < COMMIT_WINDOW]
        if not young:
            if delay > 0.002:  # it waited: rare, and what a late result comes from
                log.info("results of endpoint %s recorded %.3f s late (%d still refused): "
                         "their tasks were not visible here yet", report.endpoint_id,
                         time.monotonic() - started, len(recorded.rejected))
            return recorded
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
        again = await lc.recorder.record(
            Report(report.endpoint_id, report.session, young, report.now), [], set())
        taken = set(again.recorded) | set(again.duplicates)
        recorded = RecordedOutcomes(
            recorded.recorded + again.recorded, recorded.duplicates + again.duplicates,
            [task_id for task_id in recorded.rejected if task_id not in taken],
            recorded.finished + again.finished, recorded.streamed or again.streamed)


def _age(task_id: str, now: float) -> float:
    """Seconds since a task id was made (version 7 UUIDs carry their millisecond);
    infinite for any other id, which this service did not make."""
    try:
        value = uuid.UUID(task_id)
    except ValueError:
        return math.inf
    if value.version != 7:
        return math.inf
    return now - (value.int >> 80) / 1000


async def requeue_forever(lc: TaskLifecycle) -> None:
    """Put back tasks held by endpoints that fell silent for ``requeue_timeout``."""
    timeout = lc.ctx.settings.requeue_timeout
    interval = max(0.2, min(timeout / 4, 10.0))
    claims = lc.broker.tasks
    while True:
        await asyncio.sleep(interval)
        try:
            requeued = await run_in_threadpool(
                lc.ctx.store.requeue_stale, time.time() - timeout, claims.waiting_keys()
            )
        except Exception:
            log.exception("requeueing tasks of silent endpoints failed; will retry")
            continue
        for endpoint_id in requeued:
            log.info(
                "endpoint %s was silent for %.0f s: its claimed tasks are queued again",
                endpoint_id,
                timeout,
            )
            claims.notify(endpoint_id)


def cancel_key(endpoint_id: str) -> str:
    """The ``tasks`` wake-up key a cancel notifies besides the endpoint's own: its count
    tells claims whether a notice may be waiting (:class:`CancelMarks`)."""
    return f"cancelled:{endpoint_id}"


class CancelMarks:
    """Endpoints whose cancel notices a claim looked at, and what it knew then.

    A cancel of a task an endpoint holds notifies :func:`cancel_key` (in every process)
    before it wakes the endpoint's claims. A claim reads the notices only when that
    count changed since the last look, or the look is older than ``ttl`` seconds
    (which bounds how long a notice whose notification was lost waits): most claims
    never read them.
    """

    def __init__(self, claims: TaskWakeups, ttl: float = 2.0) -> None:
        self._claims = claims
        self._ttl = ttl
        self._looked: dict[str, tuple[int, float]] = {}

    def notifications(self, endpoint_id: str) -> int:
        return self._claims.notifications(cancel_key(endpoint_id))

    def looked(self, endpoint_id: str, notifications: int) -> None:
        self._looked[endpoint_id] = (notifications, time.monotonic())

    def may_have(self, endpoint_id: str) -> bool:
        found = self._looked.get(endpoint_id)
        return (found is None or found[0] != self.notifications(endpoint_id)
                or time.monotonic() - found[1] >= self._ttl)

    def clear(self) -> None:
        """Forget every look: the next claims read the notices."""
        self._looked.clear()


class EmptyQueues:
    """Endpoints whose queue a claim just found empty, and nothing was queued since.

    Every change that can give a claim something to take (a submission that leaves
    tasks queued, a requeue, a new session, a lock) notifies the endpoint's waiters,
    and :meth:`TaskWakeups.notifications` counts those notifications. A claim that read
    the database and found nothing records the count it saw *before* reading; while
    the count is unchanged, the same session's next claim would find nothing too and
    skips the read. Another session always reads (its first claim takes over the
    endpoint). The memory lasts ``ttl`` seconds, which bounds how long a change made
    without a notification (another process writing to the database) goes unseen.
    """

    def __init__(self, claims: TaskWakeups, ttl: float = 2.0) -> None:
        self._claims = claims
        self._ttl = ttl
        self._found: dict[str, tuple[str, int, float]] = {}

    def found_empty(self, endpoint_id: str, session: str, notifications: int) -> None:
        self._found[endpoint_id] = (session, notifications, time.monotonic())

    def known_empty(self, endpoint_id: str, session: str) -> bool:
        found = self._found.get(endpoint_id)
        return (
            found is not None
            and found[0] == session
            and found[1] == self._claims.notifications(endpoint_id)
            and time.monotonic() - found[2] < self._ttl
        )

    def clear(self) -> None:
        """Forget every mark: the next claims read the database."""
        self._found.clear()
