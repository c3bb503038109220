"""The claiming thread: keeps the engine fed with tasks from the service.

It long-polls for as many tasks as the engine has room for (its capacity plus the
config's ``prefetch``), and asks again once half of that room is free, so workers
never wait for a claim and a claim is never for a handful of tasks. After a claim
fails the endpoint starts a new session: the service then hands out again every
task it gave an older one, and those still held here are skipped by id.

After each claim it asks the link which tasks the service cancelled (the link's
optional ``cancelled()``) and has the runner stop them. While the engine has no room
it does not claim tasks, so it asks for cancels alone every ``CANCEL_POLL`` seconds
(a claim of no task), and a running task is stopped within moments even then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from farcall_endpoint.backoff import Backoff, short
from farcall_endpoint.blobs import referenced_payload, resolve_payload
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.engines.interface import Engine
from farcall_endpoint.ledger import Ledger, new_session
from farcall_endpoint.links.interface import EndpointRefused, Link
from farcall_endpoint.tasks import Outcome, Task, failure

log = logging.getLogger(__name__)

#: Seconds between asks for cancels alone while the engine has no room.
CANCEL_POLL = 1.0
#: Stops tasks by id (``Runner.cancel``).
Cancel = Callable[[Sequence[str]], None]


class Claimer:
    def __init__(self, link: Link, ledger: Ledger, engine: Engine, config: EndpointConfig,
                 fail: Callable[[EndpointRefused], None], cancel: Cancel) -> None:
        self.link, self.ledger, self.engine, self.config = link, ledger, engine, config
        self.fail = fail
        self.allowed = set(config.allowed_functions)
        self.cancel = cancel
        self._cancelled: Callable[[], list[str]] | None = getattr(link, "cancelled", None)

    def run(self) -> None:
        ledger, config = self.ledger, self.config
        backoff = Backoff(ledger.wait_stop, config.max_backoff)
        while not ledger.stopping:
            limit = max(1, self.engine.capacity() + config.prefetch)
            refill = max(1, min(limit // 2, config.max_batch))
            with ledger.lock:
                while (not ledger.stopping and ledger.outstanding
                       and limit - len(ledger.outstanding) < refill):
                    if not ledger.room.wait(CANCEL_POLL if self._cancelled else None):
                        break  # no room yet: ask for cancels alone
                room = limit - len(ledger.outstanding)
                full = bool(ledger.outstanding) and room < refill
            if ledger.stopping:
                return
            try:
                docs = self.link.claim(ledger.session, 0 if full else min(room, config.max_batch),
                                       0.0 if full else config.claim_wait)
                backoff.reset()
            except EndpointRefused as exc:
                self.fail(exc)
                return
            except Exception as exc:
                if ledger.stopping:  # the claim was cut short by the endpoint stopping
                    return
                if full:  # a claim of no task lost none: the session stays
                    log.debug("asking for cancels failed (%s)", short(exc))
                    backoff.wait()
                    continue
                log.warning("claiming tasks failed (%s); reconnecting", short(exc))
                ledger.session = new_session()
                backoff.wait()
                continue
            self.stop_cancelled()
            if docs:
                self.accept(docs)

    def stop_cancelled(self) -> None:
        """Have the runner stop the tasks the service cancelled (a link without
        ``cancelled`` never says)."""
        if self._cancelled is None:
            return
        task_ids = self._cancelled()
        if not task_ids:
            return
        log.info("the service cancelled %d task(s): stopping them", len(task_ids))
        self.cancel(task_ids)

    def accept(self, docs: list[dict[str, Any]]) -> None:
        """Hand the claimed tasks to the engine; refuse those this endpoint may not run."""
        ledger = self.ledger
        if ledger.stopping:
            return
        received = time.time()
        tasks: list[Task] = []
        refused: list[Outcome] = []
        with ledger.lock:
            for doc in docs:
                task_id = str(doc["task_id"])
                if ledger.holds(task_id):
                    continue  # handed out again after a new session; the first run reports
                try:
                    task = Task.from_claim(doc, self.config.task_timeout)
                except (KeyError, TypeError) as exc:
                    refused.append(failure(task_id, f"farcall endpoint: malformed task ({exc})",
                                           received))
                    continue
                task.received = received
                if self.allowed and task.function_id not in self.allowed:
                    refused.append(failure(
                        task_id,
                        f"farcall endpoint refused the task: function {task.function_id} is not "
                        f"in this endpoint's allowed_functions", received))
                    continue
                ledger.outstanding.add(task_id)
                tasks.append(task)
        tasks = [task for task in tasks if self._with_payload(task, refused)]
        for outcome in refused:
            ledger.deliver(outcome)
        if tasks:
            self.engine.submit(tasks)

    def _with_payload(self, task: Task, refused: list[Outcome]) -> bool:
        """Fetch a payload its submitter uploaded as a blob; a task whose payload
        cannot be fetched fails (False)."""
        try:
            key = referenced_payload(task)
            if key is not None:
                resolve_payload(self.link, task, key)
        except Exception as exc:
            refused.append(failure(task.task_id, "farcall endpoint: the task's payload could "
                                   f"not be fetched from the service ({short(exc)})",
                                   task.received))
            return False
        return True
