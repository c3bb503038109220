"""The Engine interface: what an execution engine plugin implements.

An engine plugin declares ``farcall_endpoint.kinds.EngineType(name, factory)`` in its
``farcall_engines`` hook; ``factory(options)`` receives the ``[engine]`` table of the
endpoint's config (without ``type``) and returns an :class:`Engine`. The runner then:

1. calls :meth:`Engine.start` once with an :class:`EngineContext`;
2. calls :meth:`Engine.submit` with batches of tasks, never holding more than
   :meth:`Engine.capacity` unfinished tasks in the engine;
3. receives exactly one outcome per submitted task through ``context.deliver``,
   from any thread (run the task with :func:`farcall_endpoint.execution.run_task`;
   build failures with :func:`farcall_endpoint.tasks.failure`);
4. asks :meth:`Engine.status` for the heartbeat, and calls :meth:`Engine.stop` last;
5. may call :meth:`Engine.cancel` with task ids cancelled at the service, from any
   thread: the engine stops those it holds (not started: dropped; running: stopped
   where it can) and each still ends in exactly one ``deliver``, of
   :func:`farcall_endpoint.tasks.cancelled`; ids it does not hold are ignored.

Engines enforce ``Task.timeout`` themselves, because only they can stop a task
(:class:`farcall_endpoint.engines.deadlines.Deadlines` helps those that cannot).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farcall_endpoint.execution import run_task
from farcall_endpoint.tasks import Outcome, Task


@dataclass(frozen=True)
class EngineStatus:
    """Worker counts for the heartbeat and ``get_endpoint_status``."""

    total_workers: int
    idle_workers: int
    #: Tasks the engine holds that no worker runs yet.
    pending_tasks: int


@dataclass(frozen=True)
class EngineContext:
    """What the runner hands an engine when it starts."""

    #: Report one finished task; thread-safe, cheap, never blocks for long.
    deliver: Callable[[Outcome], None]
    #: ``allowed_serializers``, ``max_result_size`` and ``endpoint_id``, for ``run_task``.
    execution: Mapping[str, Any]
    #: A directory the engine may write to (run dirs, worker logs).
    workdir: Path
    #: Container command templates by environment type, and the worker command in them.
    container_commands: Mapping[str, str] = field(default_factory=dict)
    container_worker: str = "python3 -m farcall_endpoint.engines.worker"
    #: ``run(task.wire(), execution)`` runs one task in this process with the
    #: endpoint's own serialization plugins; engines whose workers are other
    #: processes call ``farcall_endpoint.execution.run_task`` there instead.
    run: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] = field(
        default=run_task)


class Engine(ABC):
    """Runs tasks somewhere and reports their outcomes."""

    @abstractmethod
    def start(self, context: EngineContext) -> None:
        """Start workers; may block until they can take tasks."""

    @abstractmethod
    def submit(self, tasks: Sequence[Task]) -> None:
        """Accept tasks without blocking; each ends in exactly one ``deliver`` call."""

    @abstractmethod
    def capacity(self) -> int:
        """How many unfinished tasks the engine wants to hold (workers plus prefetch)."""

    @abstractmethod
    def status(self) -> EngineStatus: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop every worker; unfinished tasks are dropped (the service requeues them)."""

    def cancel(self, task_ids: Sequence[str]) -> list[str]:
        """Stop the named tasks; return the ids of those still running that it could not stop.

        Every held task named ends in one ``deliver`` of ``tasks.cancelled(task)`` (a
        late result of one it could not stop is discarded), so the runner's count of
        tasks in the engine stays right. Never blocks for long. This default, kept for
        engines written before cancellation, stops nothing: their tasks run to the end
        and report their own outcome, which the service ignores for a cancelled task.
        """
        return list(task_ids)


def no_containers(engine_name: str, task: Task) -> str | None:
    """The refusal for engines that do not run execution environments."""
    if task.container:
        kind = task.container.get("type", "?")
        return (f"farcall endpoint: the {engine_name} engine does not run execution "
                f"environments ({kind} {task.container.get('location', '')!r}); serve this "
                "function from an endpoint with the process engine")
    return None
