"""Cancels at a serving endpoint: which held tasks they reach, and what happened.

The claimer marks a task outstanding in the ledger, then hands it to the engine; a
cancel arriving in between would reach an engine that does not hold the task yet,
and the task would run. :class:`CancelGate` closes that gap: it is the engine the
claimer feeds, hand-overs and cancels pass it one at a time, and a task cancelled
before its hand-over is dropped there with its cancelled outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from farcall_endpoint.engines.interface import Engine, EngineContext, EngineStatus
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.tasks import Task, cancelled

log = logging.getLogger(__name__)


class CancelGate(Engine):
    """Passes everything to ``engine``; drops tasks cancelled before they reach it."""

    def __init__(self, engine: Engine, ledger: Ledger) -> None:
        self.engine, self.ledger = engine, ledger
        self._lock = threading.Lock()
        #: Cancelled ids that were outstanding: a hand-over of one of them is dropped.
        self._cancelled: set[str] = set()

    def start(self, context: EngineContext) -> None:
        self.engine.start(context)

    def submit(self, tasks: Sequence[Task]) -> None:
        with self._lock:
            if self._cancelled:
                dropped = [t for t in tasks if t.task_id in self._cancelled]
                self._cancelled.difference_update(t.task_id for t in dropped)
                tasks = [t for t in tasks if t.task_id not in {d.task_id for d in dropped}]
                for task in dropped:
                    self.ledger.deliver(cancelled(task, "it had not reached the engine"))
            if tasks:
                self.engine.submit(tasks)

    def capacity(self) -> int:
        return self.engine.capacity()

    def status(self) -> EngineStatus:
        return self.engine.status()

    def stop(self) -> None:
        self.engine.stop()

    def cancel(self, task_ids: Sequence[str]) -> list[str]:
        """Cancel what the endpoint holds and log, at INFO, what became of each id."""
        ledger = self.ledger
        with self._lock:
            with ledger.lock:
                wanted = list(dict.fromkeys(task_ids))
                held = [t for t in wanted if t in ledger.outstanding]
                finished = [t for t in wanted if t not in ledger.outstanding
                            and ledger.holds(t)]
                # Forget ids whose outcome is in: they can no longer be handed over.
                self._cancelled.intersection_update(ledger.outstanding)
            self._cancelled.update(held)
            unstoppable = self.engine.cancel(held) if held else []
        stopped = [t for t in held if t not in unstoppable]
        unknown = [t for t in wanted if t not in held and t not in finished]
        if stopped:
            log.info("cancelled task(s) %s: stopped or dropped before running", _ids(stopped))
        if unstoppable:
            log.info("cancelled task(s) %s: the engine could not stop them; they run on and "
                     "their results will be discarded", _ids(unstoppable))
        if finished:
            log.info("cancel of task(s) %s came after they finished: their results stand",
                     _ids(finished))
        if unknown:
            log.info("cancel of task(s) %s ignored: this endpoint does not hold them",
                     _ids(unknown))
        return unstoppable


def _ids(task_ids: Sequence[str]) -> str:
    return ", ".join(task_ids)
