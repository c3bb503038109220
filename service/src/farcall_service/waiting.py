"""Telling results to whoever waits for them (the lifecycle's last step): the result
long-poll of ``POST /farcall/v1/tasks/wait`` and the SDK channel's ``wait``.

A wait registers with the broker's ``results`` *before* it looks, so a result recorded
in between still wakes it. It looks in the memory of this process's tasks first (no
database read, no thread hop) and asks the store whenever the memory does not know
every task it names: the memory is a cache, emptied at will.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from farcall_service.storage.interface import Task

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle


async def wait(lc: TaskLifecycle, owner_id: str, ids: list[str], timeout: float) -> list[Task]:
    """The caller's tasks among ``ids`` that have ended: every one that had when it
    looked, or those in the report that woke it; at ``timeout``, none."""
    ctx, results, memory = lc.ctx, lc.broker.results, lc.memory
    wanted = set(ids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    known, first = True, True
    while True:
        # Register before looking, so a result recorded in between still wakes us.
        woken = results.waiter(owner_id)
        try:
            remembered = memory.look(ids, owner_id) if lc.memory_decides else None
            if remembered is not None:
                done = remembered  # all the caller's, accepted here: no database read
            elif first:
                known, done = await ctx.in_thread(_known_and_finished, lc, ids, owner_id)
            else:
                done = await ctx.in_thread(ended_tasks, lc, ids, owner_id)
            first = False
            remaining = deadline - loop.time()
            if not done and known and remaining > 0:
                # Awaited directly, with a timer of its own: asyncio.wait_for's layers
                # cost a turn of the loop, and the endpoint's acknowledgement, sent in
                # the same turn as this answer, went out first.
                timer = loop.call_later(remaining, _time_up, woken)
                try:
                    recorded = await woken
                finally:
                    timer.cancel()
                # The report hands over what it recorded: answer from that when any
                # of it is ours, else register again and look again.
                done = [task for task in recorded or () if task.id in wanted]
            if done or not known or deadline - loop.time() <= 0:
                return done
        finally:
            results.discard(owner_id, woken)


def _time_up(woken: asyncio.Future[Any]) -> None:
    if not woken.done():
        woken.set_result(None)


def _known_and_finished(lc: TaskLifecycle, ids: list[str],
                        owner_id: str) -> tuple[bool, list[Task]]:
    """Whether the caller may see any of ``ids``, and those that have ended."""
    return bool(lc.ctx.store.task_endpoints(ids, owner_id)), ended_tasks(lc, ids, owner_id)


def ended_tasks(lc: TaskLifecycle, ids: Iterable[str], owner_id: str) -> list[Task]:
    """The caller's tasks among ``ids`` that have ended, with those whose results
    were told to waits before their commit (held in the memory); blocking."""
    ids = list(ids)
    held = lc.memory.records(ids)
    return [*(task for task in held.values() if task.owner_id == owner_id),
            *lc.ctx.store.finished_tasks([tid for tid in ids if tid not in held], owner_id)]
