"""What a serving endpoint holds, under one lock: tasks handed to its engine and
results it still owes the service.

The claimer, the engine (through :meth:`Ledger.deliver`), the reporters and the
heartbeat share it. A task id is in at most one of ``outstanding`` (running),
``fresh`` (finished, not yet taken by a reporter) and ``unacked`` (taken, not yet
acknowledged), so a task the service hands out again can be recognised by id.
"""

from __future__ import annotations

import threading
import time
import uuid

from farcall_endpoint.tasks import Outcome


class Ledger:
    """Read and write the attributes under ``lock``; wait on ``room`` (for the
    claimer) and ``results`` (for the reporters)."""

    def __init__(self, result_batch: int, unacked: dict[str, Outcome] | None = None,
                 endpoint_id: str = "") -> None:
        self.result_batch = result_batch
        #: Named in every outcome's details, as the official endpoint does: the SDK's
        #: version check names the endpoint (workers add it too; the endpoint's own
        #: refusals and failures get it here).
        self.endpoint_id = endpoint_id
        self.lock = threading.Lock()
        #: Notified when the engine has room for more tasks.
        self.room = threading.Condition(self.lock)
        #: Notified when results are there to send, or a report on its way ended.
        self.results = threading.Condition(self.lock)
        self._stop = threading.Event()
        #: The session the service hands this endpoint's tasks to (see the links' interface).
        self.session = new_session()
        #: Ids of the tasks in the engine.
        self.outstanding: set[str] = set()
        #: Results delivered, not yet taken by a reporter, and when the first came.
        self.fresh: list[Outcome] = []
        self.fresh_ids: set[str] = set()
        self.fresh_since = 0.0
        #: Results taken by a reporter (so spooled, or about to be), not yet acknowledged.
        self.unacked: dict[str, Outcome] = dict(unacked or {})
        #: Task ids of the results in a report on its way.
        self.sending: set[str] = set()
        #: When a failed report may be tried again (shared by the reporters).
        self.retry_at = 0.0

    def deliver(self, outcome: Outcome) -> None:
        """The engine's ``deliver``: called from any thread, once per task."""
        details = outcome.get("details")
        if self.endpoint_id and isinstance(details, dict) and "endpoint_id" not in details:
            details["endpoint_id"] = self.endpoint_id
        with self.lock:
            self.outstanding.discard(outcome["task_id"])
            if not self.fresh:
                self.fresh_since = time.monotonic()
                self.results.notify()
            self.fresh.append(outcome)
            self.fresh_ids.add(outcome["task_id"])
            if len(self.fresh) == self.result_batch:
                self.results.notify()
            self.room.notify()

    def holds(self, task_id: str) -> bool:
        """Under the lock: whether the task is running or its result is still owed."""
        return task_id in self.outstanding or task_id in self.fresh_ids or task_id in self.unacked

    def stop(self) -> None:
        """The endpoint is stopping: wake every thread that waits on the ledger."""
        self._stop.set()
        with self.lock:
            self.room.notify_all()
            self.results.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_stop(self, timeout: float | None = None) -> bool:
        """Sleep until the endpoint stops, or ``timeout`` seconds; True once stopping."""
        return self._stop.wait(timeout)


def new_session() -> str:
    return str(uuid.uuid4())
