"""The ``parsl`` engine: tasks run on a Parsl HighThroughputExecutor.

The ``[engine]`` table of the endpoint config holds HighThroughputExecutor
arguments (``max_workers_per_node``, ``cores_per_worker``, ...); its ``provider``
table names a Parsl provider class by ``type`` with that class's arguments, and a
nested ``launcher`` table does the same for launchers. ``strategy`` and
``max_idletime`` go to Parsl's ``Config`` (block scaling). ``workers`` is accepted
as ``max_workers_per_node``, the name the other engines use.

Parsl cannot cancel a task it was given (``AppFuture.cancel()`` raises
``NotImplementedError``, and the HighThroughputExecutor has no way to stop one task):
a cancelled task is reported cancelled at once, runs on, and its result is dropped.
So Parsl is handed at most the engine's capacity (twice its worker slots) and the
endpoint's other tasks wait here (``hold_back``), where a cancel drops them unrun.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from farcall.private_files import private_dir
from farcall_endpoint.engines.futures import FuturesEngine
from farcall_endpoint.engines.interface import EngineContext
from farcall_endpoint.tasks import Task

log = logging.getLogger(__name__)

#: Keys of ``[engine]`` that configure Parsl itself rather than the executor.
CONFIG_KEYS = ("strategy", "strategy_period", "max_idletime")


def build_from_table(module: Any, table: Mapping[str, Any], kind: str) -> Any:
    """``{"type": "SlurmProvider", ...}`` -> ``parsl.providers.SlurmProvider(...)``."""
    values = dict(table)
    name = values.pop("type", None)
    if not name or not hasattr(module, str(name)):
        raise ValueError(f"[engine.{kind}] needs a 'type' naming a class of {module.__name__} "
                         f"(got {name!r})")
    if "launcher" in values and isinstance(values["launcher"], Mapping):
        import parsl.launchers

        values["launcher"] = build_from_table(parsl.launchers, values["launcher"], "launcher")
    return getattr(module, str(name))(**values)


def _put_scripts_on_path() -> None:
    """Parsl starts ``interchange.py`` and ``process_worker_pool.py`` by name: make the
    scripts of this interpreter's environment findable even when it is not activated."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = scripts + (os.pathsep + path if path else "")


class ParslEngine(FuturesEngine):
    name = "parsl"
    hold_back = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__()
        self.options = dict(options)
        if "workers" in self.options:  # the name the other engines use
            self.options.setdefault("max_workers_per_node", self.options.pop("workers"))
        self._dfk: Any = None
        self._executor: Any = None
        self._app: Any = None
        self._slots = int(self.options.get("max_workers_per_node") or 1)

    def start_executor(self, context: EngineContext) -> None:
        import parsl.providers
        from farcall_endpoint.execution import run_task
        from parsl.app.app import python_app
        from parsl.config import Config
        from parsl.dataflow.dflow import DataFlowKernel
        from parsl.executors import HighThroughputExecutor

        _put_scripts_on_path()
        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("parsl").setLevel(logging.WARNING)  # Parsl is chatty at INFO
        options = dict(self.options)
        config_args = {k: options.pop(k) for k in CONFIG_KEYS if k in options}
        provider_table = options.pop("provider", {"type": "LocalProvider"})
        provider = build_from_table(parsl.providers, provider_table, "provider")
        options.setdefault("label", "farcall")
        options.setdefault("address", "127.0.0.1")
        options.setdefault("max_workers_per_node", self._slots)
        self._executor = HighThroughputExecutor(provider=provider, **options)
        run_dir = context.workdir / "parsl"
        private_dir(run_dir)
        config = Config(executors=[self._executor], run_dir=str(run_dir),
                        initialize_logging=False, **config_args)
        self._dfk = DataFlowKernel(config)
        log.info("Parsl run directory: %s", self._dfk.run_dir)
        self._app = python_app(run_task, data_flow_kernel=self._dfk,
                               executors=[options["label"]])
        blocks = int(getattr(provider, "init_blocks", 1) or 1)
        nodes = int(getattr(provider, "nodes_per_block", 1) or 1)
        self._slots = max(1, int(options["max_workers_per_node"]) * blocks * nodes)

    def submit_call(self, task: Task, settings: dict[str, Any]) -> Future[Any]:
        return self._app(task.wire(), settings)

    def cancel_calls(self, futures: dict[str, Future[Any]]) -> list[str]:
        """Parsl stops none of them (see the module)."""
        return list(futures)

    def worker_count(self) -> int:
        try:
            managers = self._executor.connected_managers() if self._executor else []
            active = (m for m in managers if m.get("active", True))
            connected = sum(int(m.get("worker_count", 0)) for m in active)
        except Exception:
            connected = 0
        return connected or self._slots

    def stop_executor(self) -> None:
        if self._dfk is not None:
            try:
                self._dfk.cleanup()
            except Exception:
                log.exception("stopping Parsl failed")
            self._dfk = None
