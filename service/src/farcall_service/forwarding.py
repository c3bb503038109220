"""Tasks to endpoints that take them over AMQP (``Broker.endpoints``), and their
results and heartbeats back.

Such an endpoint's current session is :data:`AMQP_SESSION`: its registration asked
for AMQP, and every process knows it from the database. Each process runs one
:class:`Forwarder`: woken by ``broker.tasks`` like a claim (a claim waits on each
such endpoint here) and every ``SWEEP_INTERVAL`` seconds anyway, it claims the
endpoint's queued tasks under that session and publishes them to the endpoint's
queue *before* the claim commits (``TaskStore.claim(forward=...)``): concurrent
claims in several processes never take the same task (``SKIP LOCKED``), and a
process that dies in between leaves its tasks queued, forwarded again by another.

Results consumed from the broker go through :meth:`TaskLifecycle.report` (acked
after the commit); a result whose task is not the sending endpoint's is refused by
the store, logged here with the task's id, and never recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from farcall_service.brokers.interface import EndpointQueues, UserEndpoint
from farcall_service.core_endpoints import CORE_SESSION, RESTARTING, START_AGAIN, CoreRouter
from farcall_service.dispatching import take_cancels
from farcall_service.storage.interface import ClaimedTask, Outcome

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

#: The session of every endpoint that takes its tasks over AMQP.
AMQP_SESSION = "amqp"
#: Seconds between looks at every AMQP endpoint's queue when nothing wakes one.
SWEEP_INTERVAL = 1.0
#: Tasks per claim (and per confirmed batch of messages).
BATCH = 200
#: Seconds one batch may take to be confirmed before the claim rolls back.
PUBLISH_TIMEOUT = 30.0
#: What an AMQP heartbeat (the official ``ep_status_report``) may tell the status
#: routes: numbers and flags under these names; the rest is not kept.
HEARTBEAT_FIELDS = ("total_workers", "idle_workers", "managers", "active_managers",
                    "pending_tasks", "outstanding_tasks", "heartbeat_period", "active")


class Forwarder:
    """The forwarding loop of one process: :meth:`run` on the event loop."""

    def __init__(self, lc: TaskLifecycle, queues: EndpointQueues) -> None:
        self._lc = lc
        self._queues = queues
        #: What fails now (an endpoint's id, or "" for the list of endpoints): an
        #: outage is logged once, not per sweep.
        self._failing: set[str] = set()
        #: Endpoints whose queues this process watches (a claim waits on each).
        self.watching: frozenset[str] = frozenset()
        #: Those of them that are core endpoints (``farcall_service.core_endpoints``).
        self.cores: frozenset[str] = frozenset()
        self._router = CoreRouter(lc, queues)
        self._started_again = time.monotonic()

    async def run(self) -> None:
        """Consume results and heartbeats, and forward tasks until cancelled; an
        unexpected failure is logged and the loop starts again a second later."""
        consuming = False
        while True:
            try:
                if not consuming:
                    await self._queues.consume(self.results, self.heartbeat)
                    consuming = True
                await self._forward_forever()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("forwarding tasks to AMQP endpoints failed; starting again")
                await asyncio.sleep(SWEEP_INTERVAL)

    async def _forward_forever(self) -> None:
        claims = self._lc.broker.tasks
        waiters: dict[str, asyncio.Future[Any]] = {}
        try:
            while True:
                try:
                    store = self._lc.ctx.store
                    cores = await self._lc.ctx.in_thread(
                        store.endpoints_in_session, CORE_SESSION)
                    endpoints = cores + await self._lc.ctx.in_thread(
                        store.endpoints_in_session, AMQP_SESSION)
                    self.cores = frozenset(cores)
                except Exception as exc:
                    self._warn("", "reading the AMQP endpoints", exc)
                    endpoints = list(waiters)
                else:
                    self._recovered("")
                for gone in set(waiters) - set(endpoints):
                    claims.discard(gone, waiters.pop(gone))
                    self._failing.discard(gone)
                for endpoint_id in endpoints:  # registered before the read, woken after
                    if endpoint_id not in waiters:
                        waiters[endpoint_id] = claims.waiter(endpoint_id)
                self.watching = frozenset(waiters)
                for endpoint_id in endpoints:
                    await self.forward(endpoint_id)
                await self._start_again(self.cores)
                deadline = time.monotonic() + SWEEP_INTERVAL
                while (remaining := deadline - time.monotonic()) > 0:
                    if not waiters:
                        await asyncio.sleep(remaining)
                        break
                    done, _ = await asyncio.wait(
                        set(waiters.values()), timeout=remaining,
                        return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        break
                    for endpoint_id, waiter in list(waiters.items()):
                        if waiter.done():
                            claims.discard(endpoint_id, waiter)
                            waiters[endpoint_id] = claims.waiter(endpoint_id)
                            await self.forward(endpoint_id)
        finally:
            for endpoint_id, waiter in waiters.items():
                claims.discard(endpoint_id, waiter)

    async def _start_again(self, cores: Iterable[str]) -> None:
        """Every ``START_AGAIN`` seconds, repeat the start commands of the core
        endpoints with unfinished tasks (``CoreRouter``)."""
        now = time.monotonic()
        if now - self._started_again < START_AGAIN:
            return
        self._started_again = now
        for core_id in cores:
            try:
                if await self._lc.ctx.in_thread(self._lc.ctx.store.count_outstanding, core_id):
                    await self._router.start_again(core_id)
            except Exception as exc:
                self._warn(core_id, f"starting the user endpoints of {core_id} again", exc)

    async def forward(self, endpoint_id: str) -> int:
        """Claim and publish the endpoint's queued tasks; how many went. First, tell it
        which of the tasks forwarded before were cancelled (``task_cancel``)."""
        loop = asyncio.get_running_loop()
        session = CORE_SESSION if endpoint_id in self.cores else AMQP_SESSION
        await self._tell_cancels(endpoint_id)
        total = 0
        while True:
            try:
                claimed = await self._lc.ctx.in_thread(
                    self._lc.ctx.store.claim, endpoint_id, session, BATCH, time.time(),
                    lambda tasks: self._publish_from_thread(loop, endpoint_id, tasks))
            except Exception as exc:
                self._warn(endpoint_id, f"forwarding tasks to endpoint {endpoint_id}", exc)
                return total
            self._recovered(endpoint_id)
            total += len(claimed)
            if len(claimed) < BATCH:
                return total

    async def _tell_cancels(self, endpoint_id: str) -> None:
        """Publish ``task_cancel`` for the endpoint's cancelled tasks (a core endpoint's
        tasks run on user endpoints it starts: those are not told)."""
        if not self._lc.cancel_marks.may_have(endpoint_id):
            return
        try:
            cancelled = await take_cancels(self._lc, endpoint_id)
            if cancelled and endpoint_id not in self.cores:
                await self._queues.cancel(endpoint_id, cancelled)
        except Exception as exc:
            self._warn(endpoint_id, f"telling endpoint {endpoint_id} of cancelled tasks", exc)

    def _publish_from_thread(self, loop: asyncio.AbstractEventLoop, endpoint_id: str,
                             tasks: Sequence[ClaimedTask]) -> None:
        """The store's callback, in its worker thread: publish on the event loop and
        wait for the broker's confirmation (the claim commits only after it)."""
        publish = (self._router.route(endpoint_id, tasks) if endpoint_id in self.cores
                   else self._queues.forward(endpoint_id, tasks))
        confirmed = asyncio.run_coroutine_threadsafe(publish, loop)
        try:
            confirmed.result(PUBLISH_TIMEOUT)
        except concurrent.futures.TimeoutError:
            confirmed.cancel()
            raise

    async def results(self, sender: str, outcomes: list[Outcome]) -> None:
        """Results the broker says ``sender`` sent: recorded, or refused. A user
        endpoint's are its core endpoint's, for its owner's tasks only."""
        limits = self._lc.ctx.json_limits
        biggest = self._lc.ctx.settings.max_body_bytes
        outcomes = [_within(replace(o, details=limits.outcome_fields(o.details, None)[0]),
                            biggest) for o in outcomes]
        endpoint_id, session = sender, AMQP_SESSION
        user = UserEndpoint.parse(sender)
        if user is not None:
            endpoint_id, session = user.core_id, CORE_SESSION
            outcomes = await self._owners_only(user, outcomes)
        recorded = await self._lc.report(endpoint_id, session, outcomes, shared_queue=True)
        for task_id in recorded.rejected:
            log.warning("refused a result from endpoint %s for task %s: the task was not "
                        "sent to that endpoint (or is unknown)", sender, task_id)

    async def _owners_only(self, user: UserEndpoint, outcomes: list[Outcome]) -> list[Outcome]:
        """The outcomes of tasks owned by the user a user endpoint was started for."""
        tasks = await self._lc.ctx.in_thread(
            self._lc.ctx.store.get_tasks, [o.task_id for o in outcomes])
        owned = {task.id for task in tasks if task.owner_id == user.owner_id}
        for outcome in outcomes:
            if outcome.task_id not in owned:
                log.warning("refused a result from user endpoint %s for task %s: the "
                            "task is not its user's (or is unknown)", user.sender,
                            outcome.task_id)
        return [o for o in outcomes if o.task_id in owned]

    async def heartbeat(self, sender: str, details: dict[str, Any]) -> None:
        """The endpoint is alive and says how it is, as an HTTP heartbeat does. A
        user endpoint's status is its core endpoint's; the core endpoint's own
        heartbeat (which says nothing of workers) keeps the status it has."""
        kept = {name: details[name] for name in HEARTBEAT_FIELDS
                if isinstance(details.get(name), (int, float, bool))}
        user = UserEndpoint.parse(sender)
        endpoint_id = sender if user is None else user.core_id
        endpoint = await self._lc.ctx.in_thread(self._lc.ctx.store.get_endpoint, endpoint_id)
        if endpoint is None:
            return
        session = AMQP_SESSION
        if endpoint.session_id in (CORE_SESSION, RESTARTING):
            session = CORE_SESSION
            if user is None:
                kept = {**endpoint.heartbeat, "heartbeat_period": kept.get(
                    "heartbeat_period", endpoint.heartbeat.get("heartbeat_period", 0))}
        await self._lc.ctx.in_thread(self._lc.heartbeat, endpoint_id, session, kept)

    def _warn(self, what: str, doing: str, exc: BaseException) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.warning("%s failed (%s: %s); the tasks stay queued and go once it "
                        "works again", doing, type(exc).__name__, exc)

    def _recovered(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            log.info("%s works again", f"forwarding to endpoint {what}" if what
                     else "reading the AMQP endpoints")


def _within(outcome: Outcome, biggest: int) -> Outcome:
    """The outcome, or a failure saying it was too big to keep: an HTTP report could
    not carry more than ``max_body_bytes`` either, and dropping it would leave its
    task unfinished for ever."""
    size = len(outcome.result or "") + len(outcome.exception or "")
    if size <= biggest:
        return outcome
    return Outcome(outcome.task_id, "failed", None,
                   f"farcall: the endpoint's result ({size} characters) is larger than "
                   f"this service keeps (max_body_bytes, {biggest}); it was not stored",
                   outcome.details)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Stop a loop of this module."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
