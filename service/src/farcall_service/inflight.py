"""Submissions whose tasks were handed to endpoints before their commit was done."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, wait


class InFlight:
    """Commits of submissions that handed tasks to endpoints, per endpoint, until done.

    An endpoint can finish a task and report it before the submission's commit is
    done; its results wait for the commits of the submissions that handed it tasks,
    or they would find no task and be refused. The wait happens in the thread that
    records the results, which the committing thread wakes directly.
    """

    def __init__(self) -> None:
        self._commits: dict[str, set[Future[object]]] = {}
        self._lock = threading.Lock()

    def add(self, endpoint_ids: Iterable[str], commit: Future[object]) -> None:
        endpoint_ids = list(endpoint_ids)
        if not endpoint_ids:
            return
        with self._lock:
            for eid in endpoint_ids:
                self._commits.setdefault(eid, set()).add(commit)

        def done(_: object) -> None:
            with self._lock:
                for eid in endpoint_ids:
                    pending = self._commits.get(eid)
                    if pending is not None:
                        pending.discard(commit)
                        if not pending:
                            del self._commits[eid]

        commit.add_done_callback(done)  # at once if it is already done

    def pending(self, endpoint_id: str) -> list[Future[object]]:
        """The commits ``endpoint_id``'s results must wait for, as of now."""
        with self._lock:
            return list(self._commits.get(endpoint_id, ()))


def wait_for(commits: list[Future[object]]) -> None:
    """Until every one of ``commits`` has succeeded or failed (in a worker thread)."""
    if commits:
        wait(commits)
