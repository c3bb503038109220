"""The environment a task's function runs in: what shell and MPI functions read.

The official endpoint sets ``GC_TASK_UUID`` for every task and, for a task with an
MPI ``resource_specification``, ``$PARSL_MPI_PREFIX`` (and ``$PARSL_MPIEXEC_PREFIX``):
the launcher command an ``MPIFunction`` puts before its own. A farcall endpoint runs
MPI applications on its own host with ``mpiexec`` (MPICH's Hydra; Open MPI's
``mpiexec`` takes the same ``-n``), so a specification may ask for one node only.

The variables live in the worker process's environment while the task runs, as in
the official endpoint: a process-engine worker runs one task at a time. Where tasks
run side by side in one process (the thread engine, Dask's threads), an MPI task runs
alone, so that no other task's commands see its prefix; ``GC_TASK_UUID`` there is the
latest task's (the official ``ShellFunction`` only names its output files with it).
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["MPI_KEYS", "TaskEnvironment", "mpi_prefix", "task_environment"]

#: The ``resource_specification`` keys of an MPI task (the official MPI engine's).
MPI_KEYS = frozenset({"num_nodes", "ranks_per_node", "num_ranks", "launcher_options"})
#: What an MPI task's command reads: the launcher prefix (the official endpoint's names).
MPI_VARIABLES = ("PARSL_MPI_PREFIX", "PARSL_MPIEXEC_PREFIX")


class _Turns:
    """Tasks of one process run side by side, except an MPI task, which runs alone;
    one waiting goes before tasks that come after it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._mpi_running = False
        self._mpi_waiting = 0

    def enter(self, mpi: bool) -> None:
        with self._changed:
            if mpi:
                self._mpi_waiting += 1
                self._changed.wait_for(lambda: not self._mpi_running and not self._running)
                self._mpi_waiting -= 1
                self._mpi_running = True
            else:
                self._changed.wait_for(lambda: not self._mpi_running and not self._mpi_waiting)
                self._running += 1

    def leave(self, mpi: bool) -> None:
        with self._changed:
            if mpi:
                self._mpi_running = False
            else:
                self._running -= 1
            if self._mpi_waiting or mpi:
                self._changed.notify_all()


_turns = _Turns()


def _count(spec: Mapping[str, Any], key: str) -> int | None:
    raw = spec.get(key)
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"resource_specification[{key!r}] must be a whole number, not {raw!r}"
        ) from None
    if value < 1 or value != float(raw):
        raise ValueError(
            f"resource_specification[{key!r}] must be a whole number of at least 1, not {raw!r}"
        )
    return value


def mpi_prefix(spec: Mapping[str, Any] | None) -> str | None:
    """The launcher prefix for an MPI task, None for a task that asks for no MPI;
    raises ValueError with what to change for one this endpoint cannot run."""
    if not spec or not MPI_KEYS & spec.keys():
        return None
    nodes = _count(spec, "num_nodes") or 1
    per_node = _count(spec, "ranks_per_node")
    ranks = _count(spec, "num_ranks")
    if nodes != 1:
        raise ValueError(
            f"this endpoint runs MPI applications on its own host: "
            f"resource_specification['num_nodes'] must be 1, not {nodes}"
        )
    if ranks is None:
        ranks = per_node or 1
    elif per_node is not None and per_node != ranks:
        raise ValueError(
            f"resource_specification asks for {ranks} ranks on one node "
            f"but {per_node} ranks per node"
        )
    options = spec.get("launcher_options") or ""
    if not isinstance(options, str):
        raise ValueError("resource_specification['launcher_options'] must be a string")
    # Options are the submitter's own shell words: the task's command is theirs anyway.
    return shlex.join(["mpiexec", "-n", str(ranks)]) + (f" {options}" if options else "")


def task_environment(task_id: str, spec: Mapping[str, Any] | None) -> TaskEnvironment:
    """The task's variables, to set around its call; raises ValueError now, before
    anything is set, for a resource specification this endpoint cannot honour."""
    return TaskEnvironment(task_id, mpi_prefix(spec))


class TaskEnvironment:
    """Sets ``GC_TASK_UUID`` (left set afterwards, as the official endpoint leaves it:
    the next task overwrites it) and, for an MPI task, the launcher prefixes, removed
    afterwards so that the next task only has them if it asks. Cheap on purpose: it
    wraps every task."""

    __slots__ = ("_prefix", "_task_id")

    def __init__(self, task_id: str, prefix: str | None) -> None:
        self._task_id = task_id
        self._prefix = prefix

    def __enter__(self) -> None:
        _turns.enter(self._prefix is not None)
        if self._prefix is not None:
            for name in MPI_VARIABLES:
                os.environ[name] = self._prefix
        os.environ["GC_TASK_UUID"] = self._task_id

    def __exit__(self, *_exc: object) -> None:
        if self._prefix is not None:
            for name in MPI_VARIABLES:
                os.environ.pop(name, None)
        _turns.leave(self._prefix is not None)
