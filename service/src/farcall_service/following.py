"""Results pushed down the channel their tasks were submitted on.

Without this the SDK's round trip is two requests: the submission, then a wait for
its result. A submission on the SDK's channel that asks to ``follow`` its tasks is
answered with ``"following": true`` and the results already in (a result is often
told before the submission's commit is through); every later result is pushed,
``{"push": "results", "results": {task_id: document}}``, the moment the waits on it
would be woken, so the SDK has it without asking.

Only tasks this process accepted and holds in its memory of unfinished tasks are
followed (the memory is a cache: a task it does not know is waited for as usual):
the wake-ups a wait relies on then reach the channel too (a deleted
endpoint's tasks wake it to look again, in the database). When other processes
share the database (``Broker.single_process`` is False) their results reach the
channel over the broker, and one look in the database right after the listen
catches a result recorded elsewhere before it; as their wake-ups may be lost (a
broker connection dropped), a channel that followed tasks and heard nothing for
``RECHECK`` seconds looks in the database again. The channel's token is
checked again before each push; when it no longer stands, the channel is closed,
as when the client stops reading its pushes, and the SDK asks as it would without.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from farcall_service.auth import token_stands
from farcall_service.channel import Opened
from farcall_service.documents import task_document
from farcall_service.storage.interface import Task
from farcall_service.waiting import ended_tasks

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

#: Tasks a channel follows at most at a time (as many as a wait may name).
MAX_FOLLOWED = 10_000
#: The close code for a channel whose token no longer stands ("policy violation").
TOKEN_GONE = 1008
#: Seconds a channel following tasks may hear nothing before it looks in the
#: database, when other processes share it (a lost wake-up costs this much).
RECHECK = 2.0
#: Results a channel heard for tasks it did not follow (yet), kept at most: another
#: process may tell a result before the submission's commit is through here.
EARLY_KEPT = 1_000


class Follower:
    """One SDK channel's followed tasks; everything runs on the event loop."""

    def __init__(self, lc: TaskLifecycle) -> None:
        self._lc = lc
        self._ctx = lc.ctx
        self._channel: Opened | None = None
        self._owner: str | None = None
        self._followed: set[str] = set()
        self._checks: set[asyncio.Future[Any]] = set()  # referenced until done
        self._heard_at = 0.0
        self._recheck: asyncio.TimerHandle | None = None
        #: Results heard before their tasks were followed, newest last.
        self._early: dict[str, Task] = {}

    def attach(self, channel: Opened) -> None:
        """Push on ``channel`` (``channel.serve``'s ``opened``) until it closes."""
        self._channel = channel
        channel.on_close(self._stop)

    def follow(self, owner_id: str, task_ids: list[str]) -> dict[str, Any]:
        """What to add to the answer of a submission of ``task_ids`` that committed
        just now: the results already in, and whether the others will be pushed."""
        channel = self._channel
        if (channel is None or channel.closed or self._owner not in (None, owner_id)
                or len(self._followed) + len(task_ids) > MAX_FOLLOWED):
            return {}
        listened_now = self._owner is None
        if listened_now:
            self._owner = owner_id
            self._lc.broker.results.listen(owner_id, self._heard)
        # Listening before looking: a result that comes in between is seen by one.
        done = self._lc.memory.look(task_ids, owner_id)
        if done is None:  # not all known here: the SDK waits for them as it would
            return {}
        ended = {task.id for task in done}
        # Told by another process before the commit here was through.
        early = [self._early.pop(tid) for tid in task_ids
                 if tid in self._early and tid not in ended]
        done += early
        ended.update(task.id for task in early)
        pending = [tid for tid in task_ids if tid not in ended]
        self._followed.update(pending)
        if pending and not self._lc.memory_decides:
            if listened_now:
                # Another process may have recorded one between the commit and the
                # listen above, and this memory would not know: one look in the
                # database covers it. Listening since before the commit, the channel
                # heard any such result (kept early), or hears it still.
                self._later(self._look_again(pending))
            self._heard_at = asyncio.get_running_loop().time()
            if self._recheck is None:
                self._recheck = asyncio.get_running_loop().call_later(RECHECK, self._quiet)
        return {"following": True,
                "results": {task.id: task_document(task, official=False) for task in done}}

    def _heard(self, tasks: list[Task] | None) -> None:
        """A notification of the owner's results (None: look again, in the database)."""
        if tasks and not self._lc.memory_decides:
            self._keep_early(tasks)
        if not self._followed:
            return
        self._heard_at = asyncio.get_running_loop().time()
        if tasks is None:
            self._later(self._look_again(list(self._followed)))
            return
        ended = [task for task in tasks if task.id in self._followed]
        if ended:
            self._followed.difference_update(task.id for task in ended)
            self._push(ended)

    def _keep_early(self, tasks: list[Task]) -> None:
        """Keep results of tasks accepted here and not followed yet: their submission
        may be about to ask (``follow``), its commit done after another process told
        them. Other processes' tasks are never followed here."""
        memory = self._lc.memory
        for task in tasks:
            if task.id not in self._followed and memory.unfinished(task.id):
                self._early[task.id] = task
        while len(self._early) > EARLY_KEPT:
            del self._early[next(iter(self._early))]

    def _quiet(self) -> None:
        """Every ``RECHECK`` seconds while tasks are followed and other processes share
        the database: a channel that heard nothing for that long looks again."""
        self._recheck = None
        if not self._followed or self._channel is None or self._channel.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._heard_at >= RECHECK:
            self._heard_at = loop.time()
            self._later(self._look_again(list(self._followed)))
        self._recheck = loop.call_later(RECHECK, self._quiet)

    async def _look_again(self, task_ids: list[str]) -> None:
        assert self._owner is not None
        self._heard(await self._ctx.in_thread(ended_tasks, self._lc, task_ids, self._owner))

    def _push(self, tasks: list[Task]) -> None:
        channel = self._channel
        if channel is None or channel.closed:
            return
        stands = token_stands(self._ctx, channel.token, offline=True)
        if stands is None:  # the token's record is not cached: check it in a thread
            self._later(self._push_checked(channel, tasks))
        else:
            self._deliver(channel, tasks, stands)

    async def _push_checked(self, channel: Opened, tasks: list[Task]) -> None:
        self._deliver(channel, tasks,
                      bool(await self._ctx.in_thread(token_stands, self._ctx, channel.token)))

    @staticmethod
    def _deliver(channel: Opened, tasks: list[Task], stands: bool) -> None:
        if stands:
            channel.push({"push": "results",
                          "results": {task.id: task_document(task, official=False)
                                      for task in tasks}})
        elif not channel.closed:
            log.info("closing a channel whose token no longer stands")
            channel.shut(TOKEN_GONE)

    def _later(self, work: Any) -> None:
        check = asyncio.ensure_future(work)
        self._checks.add(check)
        check.add_done_callback(self._checks.discard)

    def _stop(self) -> None:
        self._followed.clear()
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        for check in self._checks:
            check.cancel()
        if self._owner is not None:
            self._lc.broker.results.unlisten(self._owner, self._heard)
