"""The ``dask`` engine: tasks run on a Dask distributed cluster.

Options of ``[engine]``: ``scheduler_address`` connects to a running scheduler;
without it the endpoint starts a ``LocalCluster`` on 127.0.0.1 with ``workers``
processes of ``threads_per_worker`` threads (default 1, so a task that blocks the
GIL does not stall others) and stops it with the endpoint. ``cluster`` holds more
LocalCluster arguments.

A cancelled task is cancelled in Dask (``Client.cancel``): one that has not started
never runs; one that already runs on a worker cannot be interrupted (a worker runs
tasks in threads), so it runs on and its result is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from farcall.private_files import private_dir
from farcall_endpoint.engines.futures import FuturesEngine
from farcall_endpoint.engines.interface import EngineContext
from farcall_endpoint.tasks import Task

log = logging.getLogger(__name__)

OPTIONS = ("scheduler_address", "workers", "threads_per_worker", "cluster")


class DaskEngine(FuturesEngine):
    name = "dask"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__()
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) of the dask engine: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(OPTIONS)})")
        self.options = dict(options)
        self._client: Any = None
        self._cluster: Any = None

    def start_executor(self, context: EngineContext) -> None:
        from distributed import Client, LocalCluster

        address = self.options.get("scheduler_address")
        if address:
            self._client = Client(address)
            return
        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("distributed").setLevel(logging.WARNING)
        private_dir(context.workdir / "dask")
        cluster_args = {
            "n_workers": int(self.options.get("workers") or 2),
            "threads_per_worker": int(self.options.get("threads_per_worker") or 1),
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",  # loopback, any free port
            "local_directory": str(context.workdir / "dask"),
            "preload": ["farcall_engine_dask.worker_setup"],  # workers ignore Ctrl-C
            **dict(self.options.get("cluster") or {}),
        }
        self._cluster = LocalCluster(**cluster_args)
        self._client = Client(self._cluster)
        log.info("Dask dashboard: %s", self._cluster.dashboard_link)

    def submit_call(self, task: Task, settings: dict[str, Any]) -> Future[Any]:
        from farcall_endpoint.execution import run_task

        return self._client.submit(run_task, task.wire(), settings, key=f"farcall-{task.task_id}",
                                   pure=False, retries=0)

    def cancel_calls(self, futures: dict[str, Future[Any]]) -> list[str]:
        """Cancels them all; returns those a worker was already running."""
        keys = {f"farcall-{task_id}": task_id for task_id in futures}
        running = self._running(set(keys))
        self._client.cancel(list(futures.values()))
        return [task_id for key, task_id in keys.items() if key in running]

    def _running(self, keys: set[str]) -> set[str]:
        """Which of these keys a worker runs now: asks only the workers the scheduler
        gave them to; a worker that cannot answer is taken to run all of its keys."""
        at: dict[str, set[str]] = {}
        for worker, found in self._client.processing().items():
            mine = keys.intersection(found)
            if mine:
                at[worker] = mine
        if not at:
            return set()
        try:
            answers = self._client.run(executing, sorted(set().union(*at.values())),
                                       workers=sorted(at), on_error="return")
        except Exception:
            answers = {}
        running: set[str] = set()
        for worker, mine in at.items():
            answer = answers.get(worker)
            running.update(set(answer) & mine if isinstance(answer, list) else mine)
        return running

    def worker_count(self) -> int:
        try:
            workers = self._client.scheduler_info()["workers"].values()
            return sum(int(w.get("nthreads", 1)) for w in workers)
        except Exception:
            return int(self.options.get("workers") or 1)

    def stop_executor(self) -> None:
        for closable in (self._client, self._cluster):
            if closable is not None:
                try:
                    closable.close()
                except Exception:
                    log.exception("stopping Dask failed")
        self._client = self._cluster = None


def executing(keys: list[str], dask_worker: Any) -> list[str]:
    """Run on each worker (``Client.run``): which of these keys it is running now."""
    tasks = dask_worker.state.tasks
    return [key for key in keys
            if key in tasks and tasks[key].state in ("executing", "long-running")]
