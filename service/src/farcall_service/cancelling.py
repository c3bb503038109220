"""Cancelling tasks: their owner ends them as ``cancelled`` before they run, or while
they run (their endpoint is told to stop them).

A cancel is ordered with the reports of the same tasks, as reports are with each
other (``dispatching.report``): it waits for a report told to the waits before its
commit, and a report that arrives while a cancel of its task is on its way waits
for it, so the waits and the database always keep the same end of a task. After the
commit the memory holds the cancelled records, the owner's waits and followers are
told at once (``recording.wake_owners``), streamed groups' results go out, and the
claims of the endpoints that held some of the tasks wake to take the notices
(``TaskStore.take_cancels``): a running task is stopped within moments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from farcall_service.dispatching import cancel_key
from farcall_service.recording import track, wake_owners
from farcall_service.storage.interface import Cancelled

if TYPE_CHECKING:
    from farcall_service.auth import Identity
    from farcall_service.lifecycle import TaskLifecycle


def reason(who: Identity, now: float) -> str:
    """The exception text of a cancelled task: it names the cancel, whose and when, in
    the words the official SDK shows as the task's failure."""
    when = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"TaskCancelled: the task was cancelled by {who.name} at {when}"


async def cancel(lc: TaskLifecycle, who: Identity, task_ids: Sequence[str]) -> Cancelled:
    """Cancel the caller's tasks among ``task_ids``; what became of each. Runs to the
    end even if the caller goes away: the memory and the wake-ups must follow the
    commit."""
    return await asyncio.shield(asyncio.ensure_future(_cancel(lc, who, list(task_ids))))


async def _cancel(lc: TaskLifecycle, who: Identity, ids: list[str]) -> Cancelled:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[Any] = loop.create_future()
    # Registered first: a report arriving from now on waits until the memory knows.
    earlier = {lc.reports_in_flight[t] for t in ids if t in lc.reports_in_flight}
    earlier |= {lc.submissions_in_flight[t] for t in ids if t in lc.submissions_in_flight}
    track(lc.cancels_in_flight, ids, gate)
    try:
        if earlier:
            await asyncio.wait(earlier)
        now = time.time()
        done: Cancelled = await lc.ctx.in_thread(
            lc.ctx.store.cancel_tasks, who.user_id, ids, reason(who, now), now)
        lc.memory.finished(done.ended)  # before the wake-up, as for a result
        wake_owners(lc, done.ended)
        if done.streamed:
            lc.outbox_filled()
        for endpoint_id in {a.endpoint_id for a in done.answers if a.held_by and a.endpoint_id}:
            lc.broker.tasks.notify(cancel_key(endpoint_id))  # a notice waits: look
            lc.broker.tasks.notify(endpoint_id)  # its claim takes the notice now
        return done
    finally:
        gate.set_result(None)
