"""Deleting the blobs nobody can reach any more, a small batch at a time.

A blob's task may be deleted or purged by whatever removes task rows; rather than
each of those knowing about blobs, every service process looks now and then for the
blobs whose task is gone (and for uploaded payloads no submission took within
``blob_grace``) and deletes them. Processes that sweep at once only repeat each
other's deletes, which are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from farcall_service.context import ServiceContext

log = logging.getLogger(__name__)

#: Seconds between sweeps, and blobs deleted per batch (a full batch sweeps again soon).
SWEEP_INTERVAL = 60.0
SWEEP_BATCH = 100


def sweep_once(ctx: ServiceContext, now: float, limit: int = SWEEP_BATCH) -> int:
    """Delete up to ``limit`` unreachable blobs and their records; how many."""
    keys = ctx.store.unreferenced_blobs(now - ctx.settings.blob_grace, limit)
    for key in keys:
        ctx.blobs.delete(key)
    ctx.store.forget_blobs(keys)
    return len(keys)


class BlobSweeper:
    """Runs :func:`sweep_once` every ``interval`` seconds on a worker thread."""

    def __init__(self, ctx: ServiceContext, interval: float = SWEEP_INTERVAL) -> None:
        self.ctx = ctx
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                while await self.ctx.in_thread(sweep_once, self.ctx, time.time()) == SWEEP_BATCH:
                    await asyncio.sleep(0.1)  # let the others write between batches
            except Exception:
                log.exception("sweeping unreachable blobs failed; trying again later")
