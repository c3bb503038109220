"""The purge: each service process deletes ended tasks kept past ``result_retention``.

It runs beside the requeue reaper (started and stopped by the lifecycle), every
``purge_interval`` seconds, in batches of ``purge_batch_size`` tasks looked at, each
batch its own short transaction (``RetentionStore.purge_ended``): a submission or a
report never waits long behind it, even on SQLite's one write lock. Several processes
on one PostgreSQL database purge side by side: each deletes only the rows it locks.

What it leaves: task groups stay (a small row each; the Executor may go on submitting
to a group whose old tasks went), and a purged task's row in the result outbox is
dropped by the next drain, which finds nothing left to publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)


async def purge_forever(lc: TaskLifecycle) -> None:
    """Purge every ``purge_interval`` seconds; a failed round is logged and retried."""
    settings = lc.ctx.settings
    while True:
        await asyncio.sleep(settings.purge_interval)
        try:
            deleted = await purge_once(lc, time.time() - settings.result_retention)
        except Exception:
            log.exception("purging expired tasks failed; will retry")
            continue
        if deleted:
            log.info("deleted %d tasks that ended more than %.0f s ago", deleted,
                     settings.result_retention)


async def purge_once(lc: TaskLifecycle, before: float) -> int:
    """Delete every task that ended before ``before``, a batch per transaction; how
    many went. The memory of just-finished tasks forgets them first, so no read is
    answered from it that the database could no longer give."""
    lc.memory.expire(before)
    store, limit = lc.ctx.store, lc.ctx.settings.purge_batch_size
    deleted, after = 0, 0
    while True:
        batch = await lc.ctx.in_thread(store.purge_ended, before, limit, after)
        deleted += batch.deleted
        if batch.done:
            return deleted
        after = batch.after
