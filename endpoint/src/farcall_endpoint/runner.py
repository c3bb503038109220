"""The endpoint's main loop: claim, run on an engine, report, heartbeat.

Threads talk to the service, each with its own connection: the claimer long-polls
for as many tasks as the engine has room for (its workers plus ``prefetch``), two
reporters spool finished outcomes to disk and send them in batches until
acknowledged, and the heartbeat reports worker counts. Two reporters, so that
results finished while a report waits for its acknowledgement (the service's
commit) go out at once rather than after it; a result is in at most one report at
a time. Nothing polls on a fixed timer: threads wait on conditions, long polls, or
backoff after errors.

After a claim fails the endpoint starts a new *session*: the service then puts
back every task it handed to an older session, including any in an answer that was
lost. Tasks the endpoint still holds are recognised by id when they come back and
are not run twice; their outcome from the first run is reported as usual.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from farcall.plugins.manager import FarcallPluginManager, get_plugin_manager
from farcall.sdk.channel import Channel
from farcall.sdk.errors import FarcallAPIError

from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.configure import ensure_endpoint_id
from farcall_endpoint.engines.interface import Engine, EngineContext
from farcall_endpoint.kinds import ENGINES
from farcall_endpoint.service_link import FatalServiceError, ServiceLink, is_fatal
from farcall_endpoint.spool import SPOOL_FILE, ResultSpool
from farcall_endpoint.tasks import Outcome, Task, failure

log = logging.getLogger(__name__)

#: Results per request and their approximate size: well under the service's body limit.
MAX_RESULTS_PER_REQUEST = 1000
MAX_REQUEST_CHARS = 4 * 1024 * 1024
#: Seconds acknowledged results may wait in the spool for its next write.
SPOOL_TIDY_DELAY = 1.0
#: Reports that may be on their way at once, each from a thread of its own.
REPORTERS = 2
#: A report on its way with this many results means results are plentiful: the next
#: ones batch up behind it (as with one reporter) rather than go in a small second one.
BUSY_REPORT = 16


class Backoff:
    """Exponential backoff with jitter, cut short when the endpoint stops."""

    def __init__(self, stop: threading.Event, most: float, first: float = 0.1) -> None:
        self.stop, self.most, self.first = stop, most, first
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next_delay(self) -> float:
        delay = min(self.most, self.delay) * random.uniform(0.5, 1.0)
        self.delay = min(self.most, self.delay * 2)
        return delay

    def wait(self) -> None:
        self.stop.wait(self.next_delay())


class EndpointRunner:
    """Serves one endpoint until :meth:`stop`.

    ``run()`` blocks (use it in a process of its own: ``farcall endpoint start``);
    ``start()`` runs it in a background thread (``farcall dev``, tests).
    """

    def __init__(self, config: EndpointConfig,
                 plugin_manager: FarcallPluginManager | None = None) -> None:
        self.config = config.validate()
        self.endpoint_id = ensure_endpoint_id(config)
        self.session = str(uuid.uuid4())
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._pm = plugin_manager
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._results = threading.Condition(self._lock)
        self._outstanding: set[str] = set()
        self._fresh: list[Outcome] = []
        self._fresh_ids: set[str] = set()
        self._fresh_since = 0.0
        self._unacked: dict[str, Outcome] = {}
        #: Task ids of the results in a report on its way.
        self._sending: set[str] = set()
        #: When a failed report may be tried again (shared by the reporters).
        self._retry_at = 0.0
        self._engine: Engine | None = None
        self._report_timeout = 120.0
        self._thread: threading.Thread | None = None

    # -- public API -------------------------------------------------------------------

    def run(self) -> None:
        """Register, serve until :meth:`stop`, then shut down; raises a fatal error."""
        pm = self._pm or get_plugin_manager()
        directory = self.config.directory
        directory.mkdir(parents=True, exist_ok=True)
        self._link = ServiceLink(self.config, pm, self.endpoint_id)
        self._backoff = Backoff(self._stop, self.config.max_backoff)
        self._spool = ResultSpool(directory / SPOOL_FILE)
        self._unacked = {o["task_id"]: o for o in self._spool.load()}
        if self._unacked:
            log.info("%d results from an earlier run wait to be sent", len(self._unacked))
        threads: list[threading.Thread] = []
        try:
            # Build the engine first: a misconfigured engine should fail before anything else.
            engine = pm.select(ENGINES, self.config.engine_type).factory(self.config.engine_options)
            if self._register():
                self._engine = engine  # stopped in `finally` even if it fails to start
                engine.start(EngineContext(
                    deliver=self._deliver,
                    execution={"allowed_serializers": list(self.config.allowed_serializers),
                               "max_result_size": self.config.max_result_size},
                    workdir=directory / "engine",
                    container_commands=dict(self.config.container_commands),
                    container_worker=self.config.container_worker,
                ))
                reporters = [(self._report_loop, f"reporter-{n}") for n in range(1, REPORTERS + 1)]
                for target, name in (*reporters, (self._heartbeat_loop, "heartbeat"),
                                     (self._claim_loop, "claimer")):
                    thread = threading.Thread(target=self._guard(target), name=f"farcall-{name}",
                                              daemon=True)
                    thread.start()
                    threads.append(thread)
                status = engine.status()
                log.info("endpoint %s (%s) serving %s with the %s engine (%d workers)",
                         self.config.name, self.endpoint_id, self._link.base_url,
                         self.config.engine_type, status.total_workers)
                self.ready.set()
                self._stop.wait()
        finally:
            self._stop.set()
            with self._lock:
                self._room.notify_all()
                self._results.notify_all()
            if self._engine is not None:
                self._engine.stop()
            # A claim may be mid long-poll; what it brings back is requeued by the service.
            for thread in threads:
                thread.join(1.0 if thread.name == "farcall-claimer" else 30.0)
            self._spool.close()
            log.info("endpoint %s stopped", self.config.name)
        if self.error is not None:
            raise self.error

    def start(self) -> threading.Thread:
        """Run in a daemon thread; wait for ``ready`` before submitting work."""
        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # kept for the caller; run() already logged
                self.error = exc
                self.ready.set()

        self._thread = threading.Thread(target=target, name=f"farcall-endpoint-{self.config.name}",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop claiming, stop the engine, flush what is done; idempotent."""
        self._stop.set()
        with self._lock:
            self._room.notify_all()
            self._results.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- internals ----------------------------------------------------------------------

    def _guard(self, target: Any) -> Any:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                log.exception("endpoint thread failed; stopping")
                self.error = self.error or exc
                self.stop(timeout=0)
        return run

    def _fatal(self, exc: BaseException) -> None:
        status = getattr(exc, "http_status", "?")
        self.error = FatalServiceError(
            f"the service refused endpoint {self.endpoint_id} ({status}): {exc}. Check the "
            "token (FARCALL_TOKEN or the config's token) and that the endpoint is yours.")
        log.error("%s", self.error)
        self.stop(timeout=0)

    def _register(self) -> bool:
        transport = self._link.transport()
        backoff = Backoff(self._stop, self.config.max_backoff)
        try:
            while not self._stop.is_set():
                try:
                    self._link.register(transport, self.config)
                    return True
                except Exception as exc:
                    if is_fatal(exc):
                        self._fatal(exc)
                        return False
                    log.warning("registering with %s failed (%s); retrying",
                                self._link.base_url, exc)
                    backoff.wait()
            return False
        finally:
            transport.close()

    def _deliver(self, outcome: Outcome) -> None:
        """Called by the engine, from any thread, once per task."""
        with self._lock:
            self._outstanding.discard(outcome["task_id"])
            if not self._fresh:
                self._fresh_since = time.monotonic()
                self._results.notify()
            self._fresh.append(outcome)
            self._fresh_ids.add(outcome["task_id"])
            if len(self._fresh) == self.config.result_batch:
                self._results.notify()
            self._room.notify()

    # claiming ------------------------------------------------------------------------------

    def _limit(self) -> int:
        assert self._engine is not None
        return max(1, self._engine.capacity() + self.config.prefetch)

    def _claim_loop(self) -> None:
        channel = self._link.channel()
        backoff = Backoff(self._stop, self.config.max_backoff)
        allowed = set(self.config.allowed_functions)
        try:
            while not self._stop.is_set():
                limit = self._limit()
                refill = max(1, min(limit // 2, self.config.max_batch))
                with self._lock:
                    while (not self._stop.is_set() and self._outstanding
                           and limit - len(self._outstanding) < refill):
                        self._room.wait()
                    room = limit - len(self._outstanding)
                if self._stop.is_set():
                    return
                try:
                    docs = self._link.claim(channel, self.session,
                                            min(room, self.config.max_batch),
                                            self.config.claim_wait)
                    backoff.reset()
                except Exception as exc:
                    if is_fatal(exc):
                        self._fatal(exc)
                        return
                    log.warning("claiming tasks failed (%s); reconnecting", _short(exc))
                    self.session = str(uuid.uuid4())
                    backoff.wait()
                    continue
                if docs:
                    self._accept(docs, allowed)
        finally:
            channel.close()

    def _accept(self, docs: list[dict[str, Any]], allowed: set[str]) -> None:
        if self._stop.is_set():
            return
        received = time.time()
        tasks: list[Task] = []
        refused: list[Outcome] = []
        with self._lock:
            for doc in docs:
                task_id = str(doc["task_id"])
                if (task_id in self._outstanding or task_id in self._fresh_ids
                        or task_id in self._unacked):
                    continue  # handed out again after a new session; the first run reports
                try:
                    task = Task.from_claim(doc, self.config.task_timeout)
                except (KeyError, TypeError) as exc:
                    refused.append(failure(task_id, f"farcall endpoint: malformed task ({exc})",
                                           received))
                    continue
                task.received = received
                if allowed and task.function_id not in allowed:
                    refused.append(failure(
                        task_id,
                        f"farcall endpoint refused the task: function {task.function_id} is not "
                        f"in this endpoint's allowed_functions", received))
                    continue
                self._outstanding.add(task_id)
                tasks.append(task)
        for outcome in refused:
            self._deliver(outcome)
        if tasks:
            assert self._engine is not None
            self._engine.submit(tasks)

    # reporting ---------------------------------------------------------------------------

    def _report_loop(self) -> None:
        """Spool finished outcomes, then send them until acknowledged.

        The outcomes go to disk while their report is on its way. While the service
        is unreachable the loop keeps spooling new outcomes as they finish and only
        the sending waits for the backoff. Acknowledged outcomes are deleted from the
        spool with its next write, or after ``SPOOL_TIDY_DELAY`` without one. Each
        reporter sends what no other report is carrying.
        """
        channel = self._link.channel()
        try:
            while True:
                with self._lock:
                    self._wait_for_reporting()
                    fresh, self._fresh = self._fresh, []
                    self._fresh_ids.clear()
                    for outcome in fresh:
                        self._unacked[outcome["task_id"]] = outcome
                    stopping = self._stop.is_set()
                    pending = [] if not stopping and time.monotonic() < self._retry_at else [
                        o for tid, o in self._unacked.items() if tid not in self._sending]
                    self._sending.update(o["task_id"] for o in pending)
                if not pending:
                    self._spool.put(fresh)  # backing off, or tidying: nothing to send now
                    if stopping:
                        return
                    continue
                spool = _Once(self._spool.put, fresh)
                try:
                    self._send(channel, pending, stopping, spool)
                    with self._lock:
                        unanswered = any(o["task_id"] in self._unacked for o in pending)
                        if unanswered:  # neither acknowledged nor rejected: do not spin
                            self._retry_at = time.monotonic() + self._backoff.next_delay()
                        else:
                            self._backoff.reset()
                            self._retry_at = 0.0
                except Exception as exc:
                    if is_fatal(exc):
                        self._fatal(exc)
                        return
                    if stopping:
                        log.warning("%d results stay on disk for the next start (%s)",
                                    len(pending), _short(exc))
                        return
                    log.warning("sending %d results failed (%s); will retry", len(pending),
                                _short(exc))
                    with self._lock:
                        self._retry_at = time.monotonic() + self._backoff.next_delay()
                    continue
                finally:
                    self._release(pending)
                    spool()  # if the report failed before it was on its way
                if stopping:
                    with self._lock:
                        if not self._fresh:
                            return
        finally:
            channel.close()

    def _release(self, outcomes: list[Outcome]) -> None:
        """These outcomes are in no report on its way any more."""
        with self._lock:
            self._sending.difference_update(o["task_id"] for o in outcomes)
            if outcomes:
                self._results.notify()  # another reporter may take these, or what waited

    def _wait_for_reporting(self) -> None:
        """Under the lock: until a batch is full or due, a retry is due, the spool is
        due a tidy-up, or stopping."""
        tidy_at = time.monotonic() + SPOOL_TIDY_DELAY if self._spool.untidy else None
        while not self._stop.is_set():
            now = time.monotonic()
            waits = []
            if self._fresh:
                due = self._fresh_since + self.config.result_flush_interval
                if len(self._fresh) >= self.config.result_batch:
                    return
                if len(self._sending) < BUSY_REPORT:  # else woken when that report is done
                    if now >= due:
                        return
                    waits.append(due - now)
            if any(tid not in self._sending for tid in self._unacked):
                if not self._fresh and now >= self._retry_at:
                    return
                if self._retry_at > now:
                    waits.append(self._retry_at - now)
            if tidy_at is not None:
                if now >= tidy_at:
                    return
                waits.append(tidy_at - now)
            self._results.wait(min(waits) if waits else None)

    def _send(self, channel: Channel, outcomes: list[Outcome], timeout_short: bool,
              spool: Callable[[], None]) -> None:
        """Send in chunks, spooling while the first is on its way; at shutdown wait
        less, as what is unsent stays on disk."""
        self._report_timeout = 10.0 if timeout_short else 120.0
        for chunk in _chunks(outcomes):
            self._send_chunk(channel, chunk, spool)

    def _send_chunk(self, channel: Channel, chunk: list[Outcome],
                    spool: Callable[[], None]) -> None:
        try:
            acknowledged, rejected = self._link.report(channel, self.session, chunk,
                                                        self._report_timeout, spool)
        except FarcallAPIError as exc:
            if exc.http_status != 413:
                raise
            spool()  # the outcomes are on disk before one of them is replaced
            if len(chunk) > 1:
                half = len(chunk) // 2
                self._send_chunk(channel, chunk[:half], spool)
                self._send_chunk(channel, chunk[half:], spool)
                return
            outcome = chunk[0]
            replacement = failure(
                outcome["task_id"],
                "farcall endpoint: the result is larger than the service accepts in one "
                f"request ({exc.message}); lower max_result_size or return less data",
                outcome.get("details", {}).get("task_transitions", {}).get("received", time.time()))
            with self._lock:
                self._unacked[outcome["task_id"]] = replacement
            self._spool.put([replacement])
            self._send_chunk(channel, [replacement], spool)
            return
        if rejected:
            log.warning("the service does not know %d reported tasks; dropping them",
                        len(rejected))
        done = acknowledged + rejected
        self._spool.forget(done)
        with self._lock:
            for task_id in done:
                self._unacked.pop(task_id, None)

    # heartbeat -----------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        transport = self._link.transport()
        period = self.config.heartbeat_period
        try:
            while not self._stop.is_set():
                assert self._engine is not None
                status = self._engine.status()
                with self._lock:
                    waiting = len(self._outstanding)
                try:
                    answer = self._link.heartbeat(transport, self.session, {
                        "total_workers": status.total_workers,
                        "idle_workers": status.idle_workers,
                        "pending_tasks": max(status.pending_tasks, 0),
                        "managers": 1,
                    })
                    offline = float((answer or {}).get("offline_timeout") or 0)
                    period = self.config.heartbeat_period
                    if offline > 0:
                        period = min(period, offline / 3)
                except Exception as exc:
                    if is_fatal(exc):
                        self._fatal(exc)
                        return
                    log.info("heartbeat failed (%s); %d tasks in hand", _short(exc), waiting)
                self._stop.wait(max(0.1, period))
        finally:
            transport.close()


class _Once:
    """A call that succeeds at most once, however often it is asked for."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self._call: Callable[..., Any] | None = call
        self._args = args

    def __call__(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            try:
                call(*self._args)
            except BaseException:
                self._call = call  # asked again (the report loop's `finally`), it raises again
                raise


def _chunks(outcomes: list[Outcome]) -> list[list[Outcome]]:
    chunks: list[list[Outcome]] = []
    current: list[Outcome] = []
    size = 0
    for outcome in outcomes:
        weight = len(outcome.get("result") or "") + len(outcome.get("exception") or "") + len(
            outcome.get("exception_data") or "") + 300
        full = len(current) >= MAX_RESULTS_PER_REQUEST or size + weight > MAX_REQUEST_CHARS
        if current and full:
            chunks.append(current)
            current, size = [], 0
        current.append(outcome)
        size += weight
    if current:
        chunks.append(current)
    return chunks


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
