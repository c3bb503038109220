"""A task's life in the service, owned in one place.

    accepted (``accepting``) -> queued, or handed straight to a waiting claim
    -> claimed by an endpoint (``dispatching``) -> result reported
    -> recorded (``recording``) -> waits and followers told (``waiting``, ``following``)

The routes and the channels are thin adapters over :class:`TaskLifecycle`: they
authenticate, check access and shape answers; everything in between happens here and
in the modules named above. Those share what this object holds: the broker
(``farcall_service.brokers``: wake-ups of claims and waits), the memory of unfinished
and just-finished tasks (``unfinished``), the reports waiting for a commit, and the
in-flight maps that keep a result's commit after its submission's and after an
earlier report of the same task.

The memory and the empty-queue marks are caches: whatever they do not know is asked
of the store, and :meth:`TaskLifecycle.forget_cached` may empty them at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farcall_service import accepting, cancelling, dispatching, purging, waiting
from farcall_service.brokers.interface import Broker, StreamAccess
from farcall_service.dispatching import CancelMarks, EmptyQueues
from farcall_service.following import Follower
from farcall_service.forwarding import AMQP_SESSION, Forwarder, cancel
from farcall_service.publishing import Publisher
from farcall_service.recording import Recorder, commit_alone
from farcall_service.storage.interface import (
    Cancelled,
    ClaimedTask,
    Outcome,
    RecordedOutcomes,
    Task,
    TaskOptions,
)
from farcall_service.unclaimed import UnclaimedHands
from farcall_service.unfinished import UnfinishedTasks

if TYPE_CHECKING:
    from farcall_service.accepting import Request
    from farcall_service.auth import Identity
    from farcall_service.context import ServiceContext

log = logging.getLogger(__name__)

#: Seconds a stopping service spends publishing what is left in the outbox.
STOP_PUBLISH_WAIT = 5.0


class TaskLifecycle:
    """Accept, dispatch, record and deliver tasks for one service process."""

    def __init__(self, ctx: ServiceContext, broker: Broker) -> None:
        self.ctx = ctx
        self.broker = broker
        #: Tasks accepted here and not finished, and those that just finished: result
        #: waits on them skip the database (a cache; see ``unfinished``).
        self.memory = UnfinishedTasks()
        #: Reports waiting to commit with the next submission.
        self.recorder = Recorder(self)
        #: Endpoints whose claims would find nothing queued: their re-claims skip the
        #: database (a cache).
        self.empty_queues = EmptyQueues(broker.tasks)
        #: When endpoints' claims last read their cancel notices (a cache).
        self.cancel_marks = CancelMarks(broker.tasks)
        #: Task id -> done when the report that told its result early has committed.
        self.reports_in_flight: dict[str, asyncio.Future[Any]] = {}
        #: Task id -> done when the submission of a task handed to a claim before its
        #: commit has committed (or failed): a result for it is committed only after.
        self.submissions_in_flight: dict[str, asyncio.Future[Any]] = {}
        #: Task id -> done when a cancel of it has committed and the memory knows: a
        #: report of it waits for that (``cancelling``).
        self.cancels_in_flight: dict[str, asyncio.Future[Any]] = {}
        #: Moves the result outbox to the broker's streams (None: it has none).
        self.publisher = Publisher(self, broker.streams) if broker.streams else None
        #: (owner, group) pairs marked streamed here: a mark is never undone, so a
        #: later submission to the group skips the store's transaction.
        self.streamed_groups: set[tuple[str, str]] = set()
        #: (owner, group) pairs known to exist, made by that owner: a v3 submission
        #: naming one skips the store's lookup (``accepting.check_group``).
        self.known_groups: set[tuple[str, str]] = set()
        #: Forwards tasks to endpoints that take them over AMQP (None: the broker
        #: has no endpoint queues).
        self.forwarder = Forwarder(self, broker.endpoints) if broker.endpoints else None
        #: Releases tasks another process handed to claims here that had stopped
        #: waiting.
        self.unclaimed = UnclaimedHands(self)
        self._reaper: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self._forwarding: asyncio.Task[None] | None = None
        self._purging: asyncio.Task[None] | None = None

    @property
    def memory_decides(self) -> bool:
        """Whether the memory may answer "not finished yet" on its own: only when the
        broker guarantees that every report of this database comes through here."""
        return self.broker.single_process

    # -- the service's own life ----------------------------------------------------

    async def start_broker(self) -> None:
        """Start the broker now, on the event loop that will serve (idempotent):
        ``farcall server start`` does before it serves, so a refusal is a plain error
        rather than a failed startup. Its I/O may live on this loop (``Broker.start``)."""
        await self.ctx.in_thread(self.broker.start, asyncio.get_running_loop())

    async def start(self) -> None:
        """Start the broker, the requeue reaper and the purge of expired tasks; on the
        event loop, before serving."""
        await self.start_broker()
        self.broker.tasks.on_unclaimed(self.unclaimed.add)
        self._reaper = asyncio.create_task(dispatching.requeue_forever(self))
        if self.ctx.settings.result_retention > 0:
            self._purging = asyncio.create_task(purging.purge_forever(self))
        if self.publisher is not None:
            self._publishing = asyncio.create_task(self.publisher.run())
        if self.forwarder is not None:
            self._forwarding = asyncio.create_task(self.forwarder.run())

    async def stop(self) -> None:
        """After the last request: commit what waits, publish the outbox once more,
        then stop the broker."""
        for task in (self._reaper, self._publishing, self._forwarding, self._purging):
            await cancel(task)
        self._reaper = self._publishing = self._forwarding = self._purging = None
        try:
            self.unclaimed.stop()
            await self.ctx.in_thread(commit_alone, self, self.recorder.take())
            if self.publisher is not None:
                # What is left goes with another process's sweep, or at the next start.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.publisher.drain(), STOP_PUBLISH_WAIT)
        finally:
            await self.ctx.in_thread(self.broker.stop)  # it may block on this loop

    # -- the task's path -----------------------------------------------------------

    async def submit(self, who: Identity, requests: Sequence[Request],
                     task_group_id: str | None, options: TaskOptions,
                     create_queue: bool = False,
                     existing_group: bool = False) -> tuple[str, list[str]]:
        """Check and store ``requests``; the task group id and task ids, in order.
        ``create_queue``: the group's results also go to its AMQP queue, when the
        broker has result streams (else it is ignored). ``existing_group``: a named
        group must exist and be the caller's (v3), else it is made (legacy v2)."""
        return await accepting.submit(self, who, requests, task_group_id, options,
                                      create_queue and self.broker.streams is not None,
                                      existing_group)

    async def claim(self, endpoint_id: str, session: str, max_tasks: int,
                    wait: float, cancelled: list[str] | None = None) -> list[ClaimedTask]:
        """Queued tasks for ``endpoint_id``, long-polling up to ``wait`` seconds. With
        ``cancelled``, the ids of tasks the endpoint holds that were cancelled are
        added to it, and such a cancel ends the wait too."""
        return await dispatching.claim(self, endpoint_id, session, max_tasks, wait,
                                       cancelled)

    async def cancel(self, who: Identity, task_ids: Sequence[str]) -> Cancelled:
        """Cancel the caller's tasks among ``task_ids`` (``cancelling``)."""
        return await cancelling.cancel(self, who, task_ids)

    async def report(self, endpoint_id: str, session: str, outcomes: list[Outcome],
                     shared_queue: bool = False) -> RecordedOutcomes:
        """Results from ``endpoint_id`` (already checked to be the caller's): told to
        the waits at once, answered once committed. ``shared_queue``: they come from
        the AMQP results queue every process consumes, not over the endpoint's own
        link (their tasks were read from the database, never handed early)."""
        return await dispatching.report(self, endpoint_id, session, outcomes, time.time(),
                                        shared_queue)

    def heartbeat(self, endpoint_id: str, session: str, details: dict[str, Any]) -> None:
        """The endpoint is alive; blocking (a store call). A new session puts the old
        one's tasks back in the queue, which wakes its claims."""
        if self.ctx.store.heartbeat(endpoint_id, session, details, time.time()):
            self.broker.tasks.notify(endpoint_id)

    async def wait(self, owner_id: str, task_ids: list[str], timeout: float) -> list[Task]:
        """The tasks among ``task_ids`` that have ended, the moment one has (or at
        ``timeout``); those the caller may not see are left out."""
        return await waiting.wait(self, owner_id, task_ids, timeout)

    def follower(self) -> Follower:
        """Pushes the results of one SDK channel's tasks (``following``)."""
        return Follower(self)

    # -- result streams (``Broker.streams``) ---------------------------------------

    async def stream_access(self, owner_id: str) -> StreamAccess | None:
        """Where ``owner_id`` reads their result queues; None when the broker has no
        streams. Raises ``BrokerError`` when the broker cannot be reached."""
        streams = self.broker.streams
        return None if streams is None else await streams.access(owner_id)

    async def reopen_stream(self, owner_id: str, task_group_id: str) -> bool:
        """Declare a streamed group's queue again (it expires when nobody reads it
        for ``stream_queue_expiry``): the official Executor reloads a group's tasks
        and then reads its queue. Whether the group is ``owner_id``'s and streamed."""
        streams = self.broker.streams
        if streams is None:
            return False
        if not await self.ctx.in_thread(self.ctx.store.group_streamed, task_group_id, owner_id):
            return False
        await streams.open(owner_id, task_group_id)
        return True

    # -- endpoints that take their tasks over AMQP (``Broker.endpoints``) ----------

    async def open_endpoint_queue(self, endpoint_id: str) -> dict[str, Any] | None:
        """Make ``endpoint_id`` take its tasks over AMQP from now on: its queue and
        broker user, and its session (:data:`forwarding.AMQP_SESSION`), which puts
        back in the queue what another session held. Its ``amqp_creds``; None when
        the broker has no endpoint queues. Raises ``BrokerError`` when the broker
        cannot be reached."""
        queues = self.broker.endpoints
        if queues is None:
            return None
        creds = await queues.open(endpoint_id)
        # A forwarding claim of nothing: the session becomes AMQP's (the old one's
        # tasks go back to the queue) without marking the endpoint seen; its own
        # heartbeats do that.
        await self.ctx.in_thread(self.ctx.store.claim, endpoint_id, AMQP_SESSION, 0,
                                 time.time(), _forward_nothing)
        self.broker.tasks.notify(endpoint_id)  # the forwarders look at its queue
        return creds

    async def close_endpoint_queue(self, endpoint_id: str) -> None:
        """The endpoint is deleted: its broker user and queue go (if it had them)."""
        queues = self.broker.endpoints
        if queues is not None:
            await queues.forget(endpoint_id)

    def outbox_filled(self) -> None:
        """A commit put results in the outbox: publish them now. Safe from any thread."""
        if self.publisher is not None:
            self.publisher.kick()

    # -- what others change or ask -------------------------------------------------

    def endpoint_changed(self, endpoint_id: str) -> None:
        """Locked, or deleted: wake its claims, which look again."""
        self.broker.tasks.notify(endpoint_id)

    def endpoint_deleted(self, endpoint_id: str) -> None:
        """After its deletion committed (its tasks failed): wake its claims, and the
        waits on its tasks, which look again in the database."""
        self.broker.tasks.notify(endpoint_id)
        for owner in self.memory.endpoint_deleted(endpoint_id):
            self.broker.results.notify(owner)
        self.outbox_filled()  # its failed tasks of streamed groups

    def online(self, endpoint_id: str) -> bool:
        """Whether a claim of ``endpoint_id`` is waiting here right now (not the
        forwarder's: an AMQP endpoint is online by its heartbeats)."""
        watched = self.forwarder is not None and endpoint_id in self.forwarder.watching
        return not watched and self.broker.tasks.has_waiters(endpoint_id)

    def records(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """Finished records held in memory, perhaps not committed yet: a read takes
        them over the store's."""
        return self.memory.records(task_ids)

    def forget_cached(self) -> None:
        """Empty the caches (the memory of tasks, the empty-queue marks); answers come
        from the store until they fill again. The in-flight maps stay: they order
        commits, they do not answer questions."""
        self.memory.clear()
        self.empty_queues.clear()
        self.known_groups.clear()
        self.cancel_marks.clear()


def _forward_nothing(_tasks: list[ClaimedTask]) -> None:
    """The ``forward`` of a claim that only takes over the endpoint's session."""
