"""Publishing the result outbox on the broker's result streams.

A streamed task group's results are written to the store's outbox in the transaction
that ends them (``TaskStore.drain_outbox``); this module moves them on to
``Broker.streams`` and deletes them once the broker has confirmed them. One loop per
process does it: woken at once by a commit that put rows in the outbox
(:meth:`Publisher.kick`, from any thread), and every ``SWEEP_INTERVAL`` seconds
anyway, which publishes what a crash or a broker outage left (another process's
rows too: the drain takes only rows no other transaction holds). At least once: a
message is published again if its process dies between the broker's confirmation
and the commit of the delete.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from farcall_service.brokers.interface import ResultStreams
from farcall_service.storage.interface import Task

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

#: Seconds between sweeps of the outbox when no commit wakes the loop.
SWEEP_INTERVAL = 1.0
#: Outbox rows per transaction (and per confirmed batch of messages).
BATCH = 200
#: Seconds one batch may take to be confirmed before it counts as failed.
PUBLISH_TIMEOUT = 30.0


class Publisher:
    """The outbox loop of one process; :meth:`run` on the event loop, :meth:`kick`
    from anywhere."""

    def __init__(self, lc: TaskLifecycle, streams: ResultStreams) -> None:
        self._lc = lc
        self._streams = streams
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Set while publishing fails: an outage is logged once, not per row or sweep.
        self._failing = False

    def kick(self) -> None:
        """A commit put rows in the outbox: publish them now. Safe from any thread."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Drain the outbox at every kick and every ``SWEEP_INTERVAL``, until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_INTERVAL)
            self._wake.clear()
            await self.drain()

    async def drain(self) -> int:
        """Publish the outbox until it is empty (or publishing fails); how many went."""
        loop = asyncio.get_running_loop()
        total = 0
        while True:
            try:
                went = await self._lc.ctx.in_thread(
                    self._lc.ctx.store.drain_outbox, BATCH,
                    lambda tasks: self._publish_from_thread(loop, tasks))
            except Exception as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("publishing results to their AMQP queues failed (%s: %s); "
                                "they stay in the outbox and go when the broker is back",
                                type(exc).__name__, exc)
                return total
            if self._failing:
                self._failing = False
                log.info("publishing results to their AMQP queues works again")
            total += went
            if went < BATCH:
                return total

    def _publish_from_thread(self, loop: asyncio.AbstractEventLoop,
                             tasks: Sequence[Task]) -> None:
        """The store's callback, in its worker thread: publish on the event loop and
        wait for the broker's confirmation (the delete commits only after it)."""
        confirmed = asyncio.run_coroutine_threadsafe(self._streams.publish(tasks), loop)
        try:
            confirmed.result(PUBLISH_TIMEOUT)
        except concurrent.futures.TimeoutError:
            confirmed.cancel()
            raise
