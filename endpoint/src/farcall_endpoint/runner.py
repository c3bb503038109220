"""The endpoint's lifecycle: connect, start the engine and the threads, stop.

Threads talk to the service through the endpoint's link, each with a connection of
its own: the claimer (:mod:`farcall_endpoint.claimer`) keeps the engine fed, two
reporters (:mod:`farcall_endpoint.reporter`) spool finished outcomes to disk and
send them in batches until acknowledged, and the heartbeat
(:mod:`farcall_endpoint.heartbeat`) reports worker counts. They share what the
endpoint holds through a :class:`~farcall_endpoint.ledger.Ledger`. Nothing polls on
a fixed timer: threads wait on conditions, long polls, or backoff after errors.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from farcall.plugins.manager import FarcallPluginManager, get_plugin_manager
from farcall.private_files import private_dir
from farcall.serialize.registry import StrategyRegistry

from farcall_endpoint.backoff import short
from farcall_endpoint.cancelling import CancelGate
from farcall_endpoint.claimer import Claimer
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.configure import ensure_endpoint_id
from farcall_endpoint.connect import connect, forget_own_login, link_context
from farcall_endpoint.engines.interface import Engine, EngineContext
from farcall_endpoint.execution import Execution
from farcall_endpoint.heartbeat import Heartbeat
from farcall_endpoint.kinds import ENGINES
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.links.interface import CredentialsRefused, EndpointRefused, Link
from farcall_endpoint.reporter import REPORTERS, Reporter
from farcall_endpoint.spool import SPOOL_FILE, ResultSpool

log = logging.getLogger(__name__)

#: Seconds to wait for each thread at shutdown. A claim may be mid long-poll: what it
#: brings back is requeued by the service, so the claimer is not waited for long.
JOIN_TIMEOUT = 30.0
CLAIMER_JOIN_TIMEOUT = 1.0


@contextmanager
def _children_ignore_ctrl_c() -> Iterator[None]:
    """Block SIGINT in this thread while the engine starts its processes and threads.

    Ctrl-C goes to the terminal's whole process group: an engine's own processes
    (Parsl's interchange) would die of it mid-shutdown, with a traceback, leaving the
    endpoint waiting for them. Processes started now inherit the blocked signal (across
    fork and exec); the main thread, which handles Ctrl-C, keeps it. A process that
    unblocks signals itself (multiprocessing's spawn does) is its engine's to quiet:
    the dask engine's workers ignore SIGINT (``farcall_engine_dask.worker_setup``).
    """
    if threading.current_thread() is threading.main_thread():
        yield  # the caller runs the endpoint in its main thread and handles signals itself
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class EndpointRunner:
    """Serves one endpoint until :meth:`stop`.

    ``run()`` blocks (use it in a process of its own: ``farcall endpoint start``);
    ``start()`` runs it in a background thread (``farcall dev``, tests).
    """

    def __init__(self, config: EndpointConfig,
                 plugin_manager: FarcallPluginManager | None = None) -> None:
        self.config = config.validate()
        self.endpoint_id = ensure_endpoint_id(config)
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._pm = plugin_manager
        self._ledger = Ledger(config.result_batch, endpoint_id=self.endpoint_id)
        self._thread: threading.Thread | None = None
        #: The engine as the claimer sees it, once serving (see :meth:`cancel`).
        self._gate: CancelGate | None = None

    # -- public API -------------------------------------------------------------------

    @property
    def session(self) -> str:
        """The session the service hands this endpoint's tasks to; new after a failed claim."""
        return self._ledger.session

    def run(self) -> None:
        """Register, serve until :meth:`stop`, then shut down; raises a fatal error."""
        pm = self._pm or get_plugin_manager()
        directory = self.config.directory
        private_dir(directory, home=self.config.home)
        ledger = self._ledger
        spool = ResultSpool(directory / SPOOL_FILE)
        ledger.unacked.update((o["task_id"], o) for o in spool.load())
        if ledger.unacked:
            log.info("%d results from an earlier run wait to be sent", len(ledger.unacked))
        link: Link | None = None
        engine: Engine | None = None
        threads: list[threading.Thread] = []
        try:
            # Build the engine first: a misconfigured engine should fail before anything else.
            built = pm.select(ENGINES, self.config.engine_type).factory(self.config.engine_options)
            context = link_context(self.config, pm, self.endpoint_id)
            try:
                link = connect(self.config, pm, context, ledger)
            except EndpointRefused as exc:
                self._fail(exc)
            if link is not None:
                engine = built  # stopped in `finally` even if it fails to start
                with _children_ignore_ctrl_c():
                    engine.start(EngineContext(
                        deliver=ledger.deliver,
                        execution={"allowed_serializers": list(self.config.allowed_serializers),
                                   "max_result_size": self.config.max_result_size,
                                   "endpoint_id": self.endpoint_id},
                        workdir=directory / "engine",
                        container_commands=dict(self.config.container_commands),
                        container_worker=self.config.container_worker,
                        run=Execution(StrategyRegistry(pm)).run,
                    ))
                threads = self._start_threads(link, engine, spool)
                workers = engine.status().total_workers
                log.info("endpoint %s (%s) serving %s with the %s engine (%d worker%s)",
                         self.config.name, self.endpoint_id, context.base_url,
                         self.config.engine_type, workers, "" if workers == 1 else "s")
                self.ready.set()
                ledger.wait_stop()
        finally:
            ledger.stop()
            if engine is not None:
                engine.stop()
            for thread in threads:
                thread.join(CLAIMER_JOIN_TIMEOUT if thread.name == "farcall-claimer"
                            else JOIN_TIMEOUT)
            if link is not None:
                if threads:
                    self._say_goodbye(link)
                link.close()
            spool.close()
            if isinstance(self.error, CredentialsRefused):
                forget_own_login(self.config)
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
        self._ledger.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def cancel(self, task_ids: Sequence[str]) -> None:
        """Stop tasks the service cancelled, if this endpoint holds them; thread-safe,
        never blocks for long.

        Tasks not yet handed to the engine are dropped; the rest go to
        :meth:`Engine.cancel`. Each held task still ends in one (cancelled) outcome, so
        the count of tasks in the engine and the results owed stay right.
        """
        gate = self._gate
        if gate is None:
            log.info("cancel of task(s) %s ignored: the endpoint is not serving",
                     ", ".join(task_ids))
            return
        try:
            gate.cancel(task_ids)
        except Exception:
            log.exception("cancelling task(s) %s failed; they run on", ", ".join(task_ids))

    @property
    def stopped(self) -> bool:
        return self._ledger.stopping

    # -- internals ----------------------------------------------------------------------

    def _start_threads(self, link: Link, engine: Engine,
                       spool: ResultSpool) -> list[threading.Thread]:
        ledger, config, fail = self._ledger, self.config, self._fail
        reporter = Reporter(link, ledger, spool, config, fail)
        gate = self._gate = CancelGate(engine, ledger)
        targets: list[tuple[Callable[[], None], str]] = [
            *((reporter.run, f"reporter-{n}") for n in range(1, REPORTERS + 1)),
            (Heartbeat(link, ledger, engine, config, fail).run, "heartbeat"),
            (Claimer(link, ledger, gate, config, fail, self.cancel).run, "claimer"),
        ]
        threads = []
        for target, name in targets:
            thread = threading.Thread(target=self._guard(target), name=f"farcall-{name}",
                                      daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                log.exception("endpoint thread failed; stopping")
                self.error = self.error or exc
                self.stop(timeout=0)
        return run

    def _say_goodbye(self, link: Link) -> None:
        """Tell the service the endpoint stops (offline at once, held tasks requeued);
        without it the service notices when heartbeats stop."""
        goodbye = getattr(link, "goodbye", None)
        if goodbye is None:
            return
        try:
            goodbye(self._ledger.session)
        except Exception as exc:
            log.info("the service was not told the endpoint stops (%s); it will notice",
                     short(exc))

    def _fail(self, exc: EndpointRefused) -> None:
        """The service refused the endpoint for good: stop, and raise it from ``run``."""
        self.error = self.error or exc
        log.error("%s", exc)
        self.stop(timeout=0)
