"""Running one task: what every engine's workers call, in whatever process they are.

``run_task`` never raises: every way a task can go wrong becomes a failed outcome
whose ``exception`` is text a person can act on. It needs only the farcall core and
the serialization plugins, so it runs in venvs, containers and cluster workers.

An :class:`Execution` serializes with one plugin manager's strategies: the runner
builds one from its own manager for engines that run tasks in its process
(``EngineContext.run``). A worker in another process has no manager to be handed, and
``run_task`` there uses that process's default one, built once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from farcall.blob_refs import max_result_size_exceeded
from farcall.serialize import Serializer, unpack_buffers
from farcall.serialize.allowlist import expand_allowlist, strategy_spec
from farcall.serialize.registry import StrategyRegistry

from farcall_endpoint.env_details import env_details
from farcall_endpoint.task_env import task_environment

__all__ = ["Execution", "run_task"]

#: The official endpoint's default result serializer, DillDataBase64.
DEFAULT_RESULT_SERIALIZER = "00"
#: Code buffers whose functions stay deserialized in a worker, most recent first.
FUNCTION_CACHE_SIZE = 64

_HOST = socket.gethostname()


def _remote_traceback(exc: BaseException) -> str:
    """The traceback from the user's function down, without this module's frame."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class Execution:
    """Runs tasks with the strategies of one registry (None: the process's default),
    keeping the serializers and the functions it deserialized for the tasks to come."""

    def __init__(self, registry: StrategyRegistry | None = None) -> None:
        self._registry = registry
        self._serializers: dict[Any, Serializer] = {}
        self._functions: OrderedDict[str, Any] = OrderedDict()

    def reader(self, allowed: tuple[str, ...] | None) -> Serializer:
        """The deserializer for an allowlist (None: everything installed), built once."""
        key = ("read", allowed)
        if key not in self._serializers:
            base = Serializer(registry=self._registry)
            self._serializers[key] = base if allowed is None else Serializer(
                allowed=expand_allowlist(allowed, base.registry), registry=self._registry)
        return self._serializers[key]

    def writer(self, strategy: str) -> Serializer:
        key = ("write", strategy)
        if key not in self._serializers:
            self._serializers[key] = Serializer(data_strategy=strategy_spec(strategy),
                                                registry=self._registry)
        return self._serializers[key]

    def function(self, code: str, serializer: Serializer) -> Any:
        """Deserialize a function once: tasks of one function share its code."""
        cache_key = f"{id(serializer)}:{code}"
        fn = self._functions.get(cache_key)
        if fn is None:
            fn = serializer.deserialize(code)
            self._functions[cache_key] = fn
            if len(self._functions) > FUNCTION_CACHE_SIZE:
                self._functions.popitem(last=False)
        else:
            self._functions.move_to_end(cache_key)
        return fn

    def serialize_result(self, value: Any, requested: list[str] | None) -> tuple[str | None, str]:
        """The result with the first requested strategy that works, or why none did."""
        errors = []
        for strategy in requested or [DEFAULT_RESULT_SERIALIZER]:
            try:
                return self.writer(strategy).serialize(value), ""
            except Exception as exc:
                errors.append(f"{strategy}: {type(exc).__name__}: {exc}")
        return None, "; ".join(errors)

    def _trust_hint(self, requested: list[str] | None, settings: Mapping[str, Any]) -> str:
        """How to get this result anyway, when only strategies that run no code were asked
        for: what the farcall SDK asks of an endpoint its caller does not own."""
        types = self.reader(None).registry.types
        by_name = {record.name: record for record in types.values()}
        records = [types.get(strategy_spec(s)) or by_name.get(strategy_spec(s))
                   for s in requested or ()]
        if not records or not all(r is not None and r.data_only for r in records):
            return ""
        endpoint_id = settings.get("endpoint_id") or "<endpoint id>"
        return (f". The submitter asked only for strategies that run no code when read, as "
                f"the farcall SDK does for endpoints its caller does not own: return plain "
                f"data (msgpack or JSON), or, if you trust this endpoint's owner, submit with "
                f"Client(trusted_endpoints=[\"{endpoint_id}\"])")

    def run(self, task: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
        """Deserialize, call, serialize: the outcome document of one task.

        ``task`` is :meth:`farcall_endpoint.tasks.Task.wire`; the function runs in the
        environment :mod:`farcall_endpoint.task_env` sets up. ``settings`` holds
        ``allowed_serializers`` (list or None), ``max_result_size`` (bytes) and
        ``endpoint_id`` (named in errors and in the details, with this worker's
        versions: :mod:`farcall_endpoint.env_details`).
        """
        started = time.time()
        steps = {"received": task.get("received") or started, "running": started}
        details: dict[str, Any] = {"task_transitions": steps, "hostname": _HOST,
                                   "worker_pid": os.getpid(), **env_details()}
        if settings.get("endpoint_id"):
            details["endpoint_id"] = settings["endpoint_id"]
        task_id = task["task_id"]

        def failed(text: str, **extra: Any) -> dict[str, Any]:
            steps["failed"] = time.time()
            return {"task_id": task_id, "status": "failed", "exception": text,
                    "details": details, **extra}

        allowed = settings.get("allowed_serializers") or None
        serializer = self.reader(tuple(allowed) if allowed else None)
        try:
            buffers = unpack_buffers(task["payload"])
            if len(buffers) != 3:
                raise ValueError(f"expected 3 packed buffers (function, args, kwargs), "
                                 f"got {len(buffers)}")
            fn = self.function(buffers[0], serializer)
            args = serializer.deserialize(buffers[1])
            kwargs = serializer.deserialize(buffers[2])
        except Exception as exc:
            return failed(f"farcall endpoint refused the task: its payload could not be "
                          f"deserialized here: {type(exc).__name__}: {exc}")
        try:
            environment = task_environment(task_id, task.get("resource_specification"))
        except ValueError as exc:
            return failed(f"farcall endpoint refused the task: {exc}")
        try:
            with environment:
                value = fn(*args, **kwargs)
        except BaseException as exc:  # SystemExit included: the task failed, not the worker
            if isinstance(exc, KeyboardInterrupt):
                raise
            text = _remote_traceback(exc)
            extra: dict[str, Any] = {}
            with contextlib.suppress(Exception):  # without it, the text is enough for the SDK
                extra["exception_data"] = self.reader(None).serialize(exc)
            return failed(text, **extra)
        requested = task.get("result_serializers")
        result, errors = self.serialize_result(value, requested)
        if result is None:
            return failed(f"farcall endpoint: the result of type {type(value).__name__} could not "
                          f"be serialized with any requested strategy ({errors})"
                          f"{self._trust_hint(requested, settings)}")
        limit = int(settings.get("max_result_size") or 0)
        size = len(result.encode("utf-8")) if limit and len(result) * 4 > limit else len(result)
        if limit and size > limit:
            return failed(max_result_size_exceeded(size, limit))
        steps["success"] = time.time()
        return {"task_id": task_id, "status": "success", "result": result, "details": details}


_default: Execution | None = None


def run_task(task: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """:meth:`Execution.run` with this process's default strategies: what workers in
    other processes call (a Dask or Parsl worker imports it by name)."""
    global _default
    if _default is None:
        _default = Execution()
    return _default.run(task, settings)
