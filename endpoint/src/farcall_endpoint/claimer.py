"""The claiming thread: keeps the engine fed with tasks from the service.

It long-polls for as many tasks as the engine has room for (its capacity plus the
config's ``prefetch``), and asks again once half of that room is free, so workers
never wait for a claim and a claim is never for a handful of tasks. After a claim
fails the endpoint starts a new session: the service then hands out again every
task it gave an older one, and those still held here are skipped by id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from farcall_endpoint.backoff import Backoff, short
from farcall_endpoint.blobs import referenced_payload, resolve_payload
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.engines.interface import Engine
from farcall_endpoint.ledger import Ledger, new_session
from farcall_endpoint.links.interface import EndpointRefused, Link
from farcall_endpoint.tasks import Outcome, Task, failure

log = logging.getLogger(__name__)


class Claimer:
    def __init__(self, link: Link, ledger: Ledger, engine: Engine, config: EndpointConfig,
                 fail: Callable[[EndpointRefused], None]) -> None:
        self.link, self.ledger, self.engine, self.config = link, ledger, engine, config
        self.fail = fail
        self.allowed = set(config.allowed_functions)

    def run(self) -> None:
        ledger, config = self.ledger, self.config
        backoff = Backoff(ledger.wait_stop, config.max_backoff)
        while not ledger.stopping:
            limit = max(1, self.engine.capacity() + config.prefetch)
            refill = max(1, min(limit // 2, config.max_batch))
            with ledger.lock:
                while (not ledger.stopping and ledger.outstanding
                       and limit - len(ledger.outstanding) < refill):
                    ledger.room.wait()
                room = limit - len(ledger.outstanding)
            if ledger.stopping:
                return
            try:
                docs = self.link.claim(ledger.session, min(room, config.max_batch),
                                       config.claim_wait)
                backoff.reset()
            except EndpointRefused as exc:
                self.fail(exc)
                return
            except Exception as exc:
                if ledger.stopping:  # the claim was cut short by the endpoint stopping
                    return
                log.warning("claiming tasks failed (%s); reconnecting", short(exc))
                ledger.session = new_session()
                backoff.wait()
                continue
            if docs:
                self.accept(docs)

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
