"""Submissions whose tasks were handed to endpoints before their commit was done."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class InFlight:
    """Submissions whose tasks were handed to endpoints before their commit.

    An endpoint can finish a task and report it before the submission's commit is
    done; its results wait for the commits of the submissions that handed it tasks,
    or they would find no task and be refused. Used on the event loop only.
    """

    def __init__(self) -> None:
        self._commits: dict[str, set[asyncio.Future[object]]] = {}

    def add(self, endpoint_ids: Iterable[str], commit: asyncio.Future[object]) -> None:
        endpoint_ids = list(endpoint_ids)
        for eid in endpoint_ids:
            self._commits.setdefault(eid, set()).add(commit)

        def done(_: object) -> None:
            for eid in endpoint_ids:
                pending = self._commits.get(eid)
                if pending is not None:
                    pending.discard(commit)
                    if not pending:
                        del self._commits[eid]

        commit.add_done_callback(done)

    async def settled(self, endpoint_id: str) -> None:
        """Once the commits of the submissions that handed ``endpoint_id`` tasks are done."""
        pending = self._commits.get(endpoint_id)
        if pending:
            await asyncio.wait(set(pending))
