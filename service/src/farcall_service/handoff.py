"""The endpoint side of task hand-off: long-poll claims and the requeue reaper.

See "The endpoint hand-off protocol" in docs/service.md for the contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from farcall_service.context import ServiceContext
from farcall_service.storage.interface import ClaimedTask

log = logging.getLogger(__name__)


async def claim(
    ctx: ServiceContext, endpoint_id: str, session: str, max_tasks: int, wait: float
) -> list[ClaimedTask]:
    """Claim queued tasks, waiting up to ``wait`` seconds for some to be committed.

    While it waits, the claim offers itself to submissions (see :mod:`.notifier`):
    a submission for this endpoint then stores its tasks as claimed by ``session``
    and hands them over directly.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, ctx.settings.max_claim_wait)
    while True:
        woken = ctx.notifier.waiter(endpoint_id)
        try:
            if ctx.empty_queues.known_empty(endpoint_id, session):
                tasks = []  # the usual re-claim after a hand-off: no database, no thread hop
            else:
                seen = ctx.notifier.notifications(endpoint_id)  # before the read, not after
                tasks = await ctx.in_thread(
                    ctx.store.claim, endpoint_id, session, max_tasks, time.time()
                )
                if not tasks:
                    ctx.empty_queues.found_empty(endpoint_id, session, seen)
            remaining = deadline - loop.time()
            if tasks or remaining <= 0:
                return tasks
            ctx.notifier.offer(woken, ClaimOffer(session, max_tasks))
            await asyncio.wait({woken}, timeout=remaining)
            # Withdrawn atomically: a submission either took the offer before this
            # line (its tasks are ours and on their way) or can no longer take it.
            if ctx.notifier.withdraw(woken):
                handed = await woken  # always resolved, even past the deadline
                if handed:
                    return handed
            elif not woken.done():
                return []  # the deadline passed
        finally:
            ctx.notifier.discard(endpoint_id, woken)


@dataclass(frozen=True)
class ClaimOffer:
    """What a waiting claim takes: tasks for ``session``, at most ``max_tasks``."""

    session: str
    max_tasks: int


async def requeue_forever(ctx: ServiceContext) -> None:
    """Put back tasks held by endpoints that fell silent for ``requeue_timeout``."""
    timeout = ctx.settings.requeue_timeout
    interval = max(0.2, min(timeout / 4, 10.0))
    while True:
        await asyncio.sleep(interval)
        try:
            requeued = await run_in_threadpool(
                ctx.store.requeue_stale, time.time() - timeout, ctx.notifier.waiting_keys()
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
            ctx.notifier.notify(endpoint_id)
