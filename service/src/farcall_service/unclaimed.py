"""Tasks another service process handed to a claim here that had stopped waiting.

A submission hands its tasks to a claim waiting in another process before it commits
them as claimed by the claim's session (``brokers.interface.Handed``). The claim may
have been answered otherwise meanwhile (another submission took its offer too, or its
wait ended): nothing would then ever give the endpoint those tasks, since no claim
takes what its session already holds. They are kept here for the session's next
claim in this process, which is usually at once (an endpoint claims again as soon as
it is answered). Not taken within ``keep`` seconds (the endpoint now claims through
another process, or stopped), they are released: put back in the queue
(``TaskStore.release``), and the endpoint's claims are woken.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from farcall_service.brokers.interface import Handed

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

#: Seconds kept tasks wait for their session's next claim here.
KEEP = 5.0


class UnclaimedHands:
    """Handed tasks per (endpoint, session), oldest first; on the event loop."""

    def __init__(self, lc: TaskLifecycle, keep: float = KEEP) -> None:
        self._lc = lc
        #: Seconds kept tasks wait for their session's next claim.
        self.keep = keep
        self._kept: dict[tuple[str, str], list[Handed]] = {}
        self._releases: set[asyncio.Task[None]] = set()

    def add(self, endpoint_id: str, session: str, handed: Handed) -> None:
        """Keep ``handed`` for the session's next claim (the broker's handler)."""
        self._kept.setdefault((endpoint_id, session), []).append(handed)
        self._lc.broker.tasks.notify(endpoint_id)  # a claim of the session may wait here
        release = asyncio.get_running_loop().create_task(
            self._release_later(endpoint_id, session, handed))
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    def take(self, endpoint_id: str, session: str, max_tasks: int) -> list[Handed]:
        """What is kept for ``session``, whole hands up to ``max_tasks`` tasks (one at
        least); the rest stays."""
        kept = self._kept.get((endpoint_id, session))
        taken: list[Handed] = []
        count = 0
        while kept and (not taken or count + len(kept[0].tasks) <= max_tasks):
            count += len(kept[0].tasks)
            taken.append(kept.pop(0))
        if not kept:
            self._kept.pop((endpoint_id, session), None)
        return taken

    def __bool__(self) -> bool:
        return bool(self._kept)

    async def _release_later(self, endpoint_id: str, session: str, handed: Handed) -> None:
        await asyncio.sleep(self.keep)
        kept = self._kept.get((endpoint_id, session), [])
        if handed not in kept:
            return  # taken by a claim
        kept.remove(handed)
        if not kept:
            self._kept.pop((endpoint_id, session), None)
        await self._release(endpoint_id, session, handed)

    async def _release(self, endpoint_id: str, session: str, handed: Handed,
                       wait: bool = True) -> None:
        if handed.committed is not None and (wait or handed.committed.done()):
            # Released after the submission's commit, or its rows would not be there.
            committed = await asyncio.wrap_future(handed.committed)
            if committed is False:
                return  # nothing was stored
        try:
            released = await self._lc.ctx.in_thread(
                self._lc.ctx.store.release, endpoint_id, session,
                [task.id for task in handed.tasks])
        except Exception:
            log.exception("releasing %d handed task(s) of endpoint %s failed; they go back "
                          "to the queue when its session changes", len(handed.tasks),
                          endpoint_id)
            return
        if released:
            self._lc.broker.tasks.notify(endpoint_id)

    async def stop(self) -> None:
        """Release everything kept: nobody here will claim it any more."""
        for release in list(self._releases):
            release.cancel()
        kept, self._kept = self._kept, {}
        for (endpoint_id, session), hands in kept.items():
            for handed in hands:
                await self._release(endpoint_id, session, handed, wait=False)
