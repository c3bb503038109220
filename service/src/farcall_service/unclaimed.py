"""Tasks another service process handed to a claim here that had stopped waiting.

A submission hands its tasks to a claim waiting in another process before it commits
them as claimed by the claim's session (``brokers.interface.Handed``). The claim may
have been answered otherwise meanwhile (another submission took its offer too, or its
wait ended): nothing would then ever give the endpoint those tasks, since no claim
takes what its session already holds. Both sides put them back in the queue once the
submission committed (``TaskStore.release``, which changes only what the session
still holds, so doing it twice is harmless): the submission's process, told that
the claim did not get them, and this one, so that either may die meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from farcall_service.accepting import release
from farcall_service.brokers.interface import Handed

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle


class UnclaimedHands:
    """Releases handed tasks no claim here took; on the event loop."""

    def __init__(self, lc: TaskLifecycle) -> None:
        self._lc = lc
        self._waiting: set[asyncio.Task[None]] = set()

    def add(self, endpoint_id: str, session: str, handed: Handed) -> None:
        """Release ``handed`` once its submission committed (the broker's handler)."""
        work = asyncio.get_running_loop().create_task(
            self._release_committed(endpoint_id, session, handed))
        self._waiting.add(work)
        work.add_done_callback(self._waiting.discard)

    async def _release_committed(self, endpoint_id: str, session: str, handed: Handed) -> None:
        # After the submission's commit, or its rows would not be there yet.
        if (handed.committed is not None
                and await asyncio.wrap_future(handed.committed) is False):
            return  # nothing was stored
        release(self._lc, endpoint_id, session, [task.id for task in handed.tasks])

    def stop(self) -> None:
        """Stop waiting for commits: their submissions release the tasks."""
        for work in list(self._waiting):
            work.cancel()
