"""The ``process`` engine: a pool of worker processes that survives its workers dying.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one
worker dies, so this engine runs its own workers (:mod:`.worker`), each a
subprocess with a pipe in each direction. One dispatcher thread waits on every
pipe at once: it sends each worker up to ``worker_prefetch`` tasks so a worker
never waits for the next one, reads outcomes as they come, and when a worker's
pipe closes fails only the task that worker was running (the others it held go
back to the queue) and starts a replacement. A task over its time limit has its
worker stopped (SIGTERM, then SIGKILL after a short grace) and replaced the same way,
and so has a running task that is cancelled; a cancelled task still queued here is
dropped, and one queued at a worker is skipped by that worker.

Tasks whose function names an execution environment run in separate workers
started for that environment (see :mod:`farcall_endpoint.environments`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from farcall.private_files import open_private, private_dir

from farcall_endpoint.engines.interface import Engine, EngineContext, EngineStatus
from farcall_endpoint.environments import (
    UnsupportedEnvironment,
    describe,
    environment_key,
    worker_command,
)
from farcall_endpoint.tasks import Task, cancelled, failure

log = logging.getLogger(__name__)

EnvKey = tuple[str, str] | None
#: Tasks queued at a busy worker stay under this many characters: a pipe holds 64 KiB,
#: and a write to a full pipe would stall the whole pool. Idle workers take any size.
PREFETCH_BUDGET = 48 * 1024
#: Consecutive workers of a pool that may exit before becoming ready before the tasks
#: waiting for that pool are failed (a broken environment, not a passing crash).
START_ATTEMPTS = 3
#: Seconds a worker being stopped has between SIGTERM and SIGKILL.
STOP_GRACE = 1.0


def exit_description(returncode: int | None) -> str:
    if returncode is None:
        return "it closed its channel"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"


class _Worker:
    """One worker subprocess and the tasks sent to it, oldest (running) first."""

    def __init__(self, key: EnvKey, command: list[str], settings: Mapping[str, Any],
                 log_path: Path) -> None:
        self.key = key
        child_in, self_out = os.pipe()
        self_in, child_out = os.pipe()
        try:
            with open_private(log_path) as log_file:
                self.proc = subprocess.Popen(command, stdin=child_in, stdout=child_out,
                                             stderr=log_file, close_fds=True)
        except BaseException:
            os.close(self_out)
            os.close(self_in)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.tx = Connection(self_out, readable=False)
        self.rx = Connection(self_in, writable=False)
        self.ready = False
        #: Whether the worker skips queued tasks named in a cancel frame (older workers
        #: in a container image may not; their late results are discarded instead).
        self.skips = False
        self.inflight: deque[Task] = deque()
        self.head_started = 0.0
        self.started = time.monotonic()
        self.tx.send(dict(settings))

    def kill(self, grace: float = 0.0) -> int | None:
        """SIGTERM first when given a grace (user code may clean up), then SIGKILL."""
        if grace:
            with contextlib.suppress(OSError):
                self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        with contextlib.suppress(OSError):
            self.proc.kill()
        return self.reap()

    def reap(self, timeout: float = 5.0) -> int | None:
        for conn in (self.tx, self.rx):
            with contextlib.suppress(OSError):
                conn.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class _Pool:
    """Workers of one environment and the tasks waiting for them."""

    def __init__(self, key: EnvKey, size: int) -> None:
        self.key = key
        self.size = size
        self.workers: list[_Worker] = []
        self.pending: deque[Task] = deque()
        self.failures = 0
        self.next_spawn = 0.0


class ProcessEngine(Engine):
    """Options: ``workers`` (default: CPU count), ``worker_prefetch`` (tasks queued at
    each worker, default 4), ``environment_workers`` (workers per execution
    environment, default 1)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.workers = int(options.get("workers") or os.cpu_count() or 1)
        self.depth = max(1, int(options.get("worker_prefetch", 4)))
        self.environment_workers = max(1, int(options.get("environment_workers", 1)))
        unknown = set(options) - {"workers", "worker_prefetch", "environment_workers"}
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown option(s) of the process engine: {names}")
        self._lock = threading.Lock()
        self._pools: dict[EnvKey, _Pool] = {None: _Pool(None, self.workers)}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._context: EngineContext | None = None
        #: Cancelled tasks at a worker: whatever the worker reports for them is
        #: replaced by a cancelled outcome.
        self._cancelled: set[str] = set()
        #: Workers whose running task was cancelled, for the dispatcher to stop.
        self._to_stop: list[_Worker] = []

    # -- Engine interface ---------------------------------------------------------------

    def start(self, context: EngineContext) -> None:
        self._context = context
        private_dir(context.workdir)
        self._log_path = context.workdir / "workers.log"
        self._thread = threading.Thread(target=self._loop, name="farcall-process-engine",
                                        daemon=True)
        self._thread.start()

    def submit(self, tasks: Sequence[Task]) -> None:
        with self._lock:
            for task in tasks:
                key = environment_key(task.container)
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = _Pool(key, self.environment_workers)
                pool.pending.append(task)
            # Straight to a worker from the caller's thread when one has room: a hop
            # through the dispatcher thread is a noticeable part of a round trip.
            if self._thread is not None:
                self._dispatch()
            # The dispatcher must look again only if some task still waits for a worker
            # (or one to be started) or has a deadline to watch.
            settled = (not any(p.pending for p in self._pools.values())
                       and not any(t.timeout for t in tasks))
        if not settled:
            self._wake()

    def capacity(self) -> int:
        return self.workers * self.depth

    def status(self) -> EngineStatus:
        with self._lock:
            pools = list(self._pools.values())
            total = sum(p.size for p in pools if p.key is None or p.workers)
            busy = sum(1 for p in pools for w in p.workers if w.inflight)
            pending = sum(len(p.pending) + sum(max(0, len(w.inflight) - 1) for w in p.workers)
                          for p in pools)
        return EngineStatus(total_workers=total, idle_workers=max(0, total - busy),
                            pending_tasks=pending)

    def cancel(self, task_ids: Sequence[str]) -> list[str]:
        """Drops queued tasks, has workers skip tasks queued at them, and has the
        dispatcher stop the workers running the others (never blocking here)."""
        wanted = set(task_ids)
        dropped: list[Task] = []
        unskippable: list[str] = []
        with self._lock:
            for pool in self._pools.values():
                if any(t.task_id in wanted for t in pool.pending):
                    dropped.extend(t for t in pool.pending if t.task_id in wanted)
                    pool.pending = deque(t for t in pool.pending if t.task_id not in wanted)
                for worker in pool.workers:
                    held = [t.task_id for t in worker.inflight if t.task_id in wanted]
                    if not held:
                        continue
                    self._cancelled.update(held)
                    queued = held[1:] if held[0] == worker.inflight[0].task_id else held
                    if len(queued) < len(held):
                        self._to_stop.append(worker)  # its queued tasks go with it
                    if queued and worker.skips:
                        # Sent even to a worker about to be stopped: its running task
                        # may end first, and then the worker lives on.
                        with contextlib.suppress(OSError):  # it died: its EOF reports that
                            worker.tx.send({"cancel": queued})
                    elif queued and len(queued) == len(held):
                        unskippable.extend(queued)
        for task in dropped:
            self._deliver(cancelled(task, "it had not started"))
        if self._to_stop:
            self._wake()
        return unskippable

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            workers = [w for p in self._pools.values() for w in p.workers]
            for pool in self._pools.values():
                pool.workers.clear()
        for worker in workers:
            worker.kill()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the dispatcher thread --------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe is already awake; closed: stopped
            os.write(self._wake_w, b"x")

    def _deliver(self, outcome: dict[str, Any]) -> None:
        assert self._context is not None
        self._context.deliver(outcome)

    def _loop(self) -> None:
        while not self._stopping:
            with self._lock:
                self._spawn()
                self._dispatch()
                by_rx = {w.rx: w for p in self._pools.values() for w in p.workers}
                delay = self._next_deadline()
            ready = wait([self._wake_r, *by_rx], delay)
            for conn in ready:
                if conn == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        return
                elif isinstance(conn, Connection):
                    self._drain(by_rx[conn])
            self._expire()
            self._stop_cancelled()

    def _spawn(self) -> None:
        context = self._context
        assert context is not None  # the loop runs once started
        now = time.monotonic()
        for pool in self._pools.values():
            wanted = pool.size if pool.key is None or pool.pending else len(pool.workers)
            while len(pool.workers) < wanted and now >= pool.next_spawn:
                try:
                    command = worker_command(pool.key, context.container_commands,
                                             context.container_worker)
                    pool.workers.append(_Worker(pool.key, command, context.execution,
                                                self._log_path))
                except (UnsupportedEnvironment, OSError) as exc:
                    self._fail_pending(pool, f"farcall endpoint: cannot start a worker for "
                                             f"{describe(pool.key)}: {exc}")
                    break

    def _dispatch(self) -> None:
        now = time.monotonic()
        for pool in self._pools.values():
            if not pool.pending:
                continue
            for worker in sorted(pool.workers, key=lambda w: len(w.inflight)):
                if not worker.ready or not pool.pending:
                    continue
                batch: list[Task] = []
                queued = sum(len(t.payload) for t in worker.inflight)
                while pool.pending and len(worker.inflight) + len(batch) < self.depth:
                    size = len(pool.pending[0].payload) + 512
                    if (worker.inflight or batch) and queued + size > PREFETCH_BUDGET:
                        break
                    queued += size
                    batch.append(pool.pending.popleft())
                if not batch:
                    continue
                if not worker.inflight:
                    worker.head_started = now
                worker.inflight.extend(batch)
                with contextlib.suppress(OSError):  # it died: its pipe's EOF reports that
                    worker.tx.send([t.wire() for t in batch])


    def _next_deadline(self) -> float | None:
        soonest: float | None = None
        now = time.monotonic()
        for pool in self._pools.values():
            if pool.pending and pool.next_spawn > now:
                soonest = min(soonest or 1e9, pool.next_spawn - now)
            for worker in pool.workers:
                if worker.inflight and worker.inflight[0].timeout:
                    left = worker.head_started + worker.inflight[0].timeout - now
                    soonest = min(soonest if soonest is not None else left, left)
        return None if soonest is None else max(0.0, soonest)

    def _drain(self, worker: _Worker) -> None:
        outcomes = []
        try:
            while worker.rx.poll(0):
                kind, body = worker.rx.recv()
                if kind == "ready":
                    worker.ready = True
                    worker.skips = isinstance(body, dict) and bool(body.get("cancel"))
                    with self._lock:
                        self._pools[worker.key].failures = 0
                    continue
                with self._lock:
                    if not worker.inflight or worker.inflight[0].task_id != body["task_id"]:
                        log.warning("a worker reported task %s out of order", body.get("task_id"))
                        continue
                    task = worker.inflight.popleft()
                    started = worker.head_started
                    worker.head_started = time.monotonic()
                    if task.task_id in self._cancelled:
                        self._cancelled.discard(task.task_id)
                        body = cancelled(task, "it had not started" if body.get("skipped") else
                                         "it ended before it could be stopped; its result was "
                                         "discarded",
                                         started=None if body.get("skipped") else
                                         time.time() - (time.monotonic() - started))
                outcomes.append(body)
        except (EOFError, OSError):
            self._lost(worker)
        finally:
            for outcome in outcomes:
                self._deliver(outcome)

    def _lost(self, worker: _Worker, reason: str | None = None) -> None:
        """A worker's channel closed: fail its running task, requeue the rest, replace it."""
        with self._lock:
            pool = self._pools[worker.key]
            if worker in pool.workers:
                pool.workers.remove(worker)
            held = list(worker.inflight)
            worker.inflight.clear()
        returncode = worker.kill(STOP_GRACE) if reason else worker.reap()
        if self._stopping:
            return
        if not worker.ready:
            with self._lock:
                pool.failures += 1
                pool.next_spawn = time.monotonic() + min(5.0, 0.2 * 2 ** pool.failures)
                # One crash during start (a worker killed while importing) is retried;
                # a worker that keeps failing to start fails the tasks waiting for it.
                if (pool.failures >= START_ATTEMPTS
                        and not any(w.ready for w in pool.workers)):
                    self._fail_pending(pool, (
                        f"farcall endpoint: the worker for {describe(pool.key)} exited before it "
                        f"was ready ({exit_description(returncode)}); its output is in "
                        f"{self._log_path}{_tail(self._log_path)}"))
            return
        if held:
            head = held[0]
            started = time.time() - (time.monotonic() - worker.head_started)
            with self._lock:
                gone = [t for t in held if t.task_id in self._cancelled]
                self._cancelled.difference_update(t.task_id for t in gone)
                rest = [t for t in held[1:] if t not in gone]
                pool.pending.extendleft(reversed(rest))
            if head not in gone:
                message = reason or (
                    f"farcall endpoint: the worker process running this task died "
                    f"({exit_description(returncode)}) and was replaced; the task was not "
                    "retried")
                self._deliver(failure(head.task_id, message, head.received, started=started,
                                      worker_pid=worker.proc.pid))
            for task in gone:
                running = task is head
                self._deliver(cancelled(
                    task, "its worker process was stopped and replaced" if running
                    else "it had not started", started=started if running else None,
                    worker_pid=worker.proc.pid))
        log.info("worker %d for %s ended (%s); starting a replacement", worker.proc.pid,
                 describe(worker.key), exit_description(returncode))

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [
                w for p in self._pools.values() for w in p.workers
                if w.inflight and w.inflight[0].timeout
                and now - w.head_started >= w.inflight[0].timeout
            ]
        for worker in late:
            limit = worker.inflight[0].timeout
            self._lost(worker, (
                f"farcall endpoint: the task exceeded its time limit of {limit:g} s "
                "(task_timeout, or the task's resource_specification timeout); its worker "
                "was stopped and replaced"))

    def _stop_cancelled(self) -> None:
        """Stop the workers whose running task was cancelled (if it still runs)."""
        with self._lock:
            workers, self._to_stop = self._to_stop, []
            running = [w for w in dict.fromkeys(workers)
                       if w in self._pools[w.key].workers and w.inflight
                       and w.inflight[0].task_id in self._cancelled]
        for worker in running:
            self._lost(worker, "farcall endpoint: the task was cancelled")

    def _fail_pending(self, pool: _Pool, reason: str) -> None:
        while pool.pending:
            task = pool.pending.popleft()
            self._deliver(failure(task.task_id, reason, task.received))


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return ":\n" + "\n".join(text) if text else ""
