"""Live pages: server-sent events that tell a page its viewer's tasks have changed.

A page listens to the broker's result wake-ups of its viewer (``results``, keyed by
owner), which reach every service process, so a page served by one process hears
of results recorded by another. Events say only *that* something changed, and how
many wake-ups they stand for: the page then fetches itself again, through the same
access checks as any page. Wake-ups are coalesced to at most one event every
:data:`THROTTLE` seconds, so a 10,000-task batch costs a page a few reloads, not
10,000. The viewer's token is checked again before each event; a stream ends when
it no longer stands, after :data:`MAX_SECONDS` (the browser reconnects), or when the
service stops.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from farcall_service.auth import token_stands
from farcall_service.context import ServiceContext
from farcall_service.storage.interface import Task

#: Seconds between two events of one page, at least.
THROTTLE = 1.0
#: Seconds of silence after which a comment keeps proxies from closing the stream.
KEEPALIVE = 15.0
#: Seconds a stream lasts; the browser's EventSource opens a new one.
MAX_SECONDS = 600.0


class PageFeed:
    """The wake-ups of one owner's results, counted until the next event."""

    def __init__(self, ctx: ServiceContext, owner_id: str) -> None:
        self._ctx = ctx
        self._owner = owner_id
        self._changed = asyncio.Event()
        self._count = 0

    def _heard(self, tasks: list[Task] | None) -> None:
        self._count += len(tasks) if tasks else 1
        self._changed.set()

    async def events(self, token: str, throttle: float = THROTTLE,
                     max_seconds: float = MAX_SECONDS) -> AsyncIterator[str]:
        """The stream's lines: ``retry``, then an event per burst of wake-ups."""
        results = self._ctx.lifecycle.broker.results
        results.listen(self._owner, self._heard)
        loop = asyncio.get_running_loop()
        ends = loop.time() + max_seconds
        try:
            yield f"retry: {int(throttle * 2000)}\n\n"
            while loop.time() < ends:
                try:
                    await asyncio.wait_for(self._changed.wait(), KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                await asyncio.sleep(throttle)  # let a burst of results gather
                self._changed.clear()
                heard, self._count = self._count, 0
                stands = token_stands(self._ctx, token, offline=True)
                if stands is None:
                    stands = await self._ctx.in_thread(token_stands, self._ctx, token)
                if not stands:
                    return  # revoked or expired: the page's next fetch signs in again
                yield f"event: changed\ndata: {json.dumps({'wakeups': heard})}\n\n"
        finally:
            results.unlisten(self._owner, self._heard)
