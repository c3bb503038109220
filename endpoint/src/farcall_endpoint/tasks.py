"""Tasks as the endpoint holds them, and the outcome documents it reports.

An outcome is exactly one entry of ``POST .../results``: ``task_id``, ``status``,
``result`` or ``exception`` (plus ``exception_data`` when the exception itself could
be serialized) and ``details`` with the task's transitions and their times.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any

from farcall_endpoint.env_details import env_details

Outcome = dict[str, Any]

HOSTNAME = socket.gethostname()


@dataclass
class Task:
    task_id: str
    function_id: str
    #: Packed buffers: function, args, kwargs.
    payload: str
    result_serializers: list[str] | None = None
    resource_specification: dict[str, Any] | None = None
    #: ``{"container_id", "name", "type", "location", ...}`` when the function has one.
    container: dict[str, Any] | None = None
    received: float = field(default_factory=time.time)
    #: The time limit that applies to this task, in seconds; None for none.
    timeout: float | None = None

    @classmethod
    def from_claim(cls, doc: dict[str, Any], default_timeout: float) -> Task:
        spec = doc.get("resource_specification") or None
        return cls(
            task_id=str(doc["task_id"]),
            function_id=str(doc.get("function_id") or ""),
            payload=doc["payload"],
            result_serializers=doc.get("result_serializers") or None,
            resource_specification=spec,
            container=doc.get("container") or None,
            timeout=task_timeout(spec, default_timeout),
        )

    def wire(self) -> dict[str, Any]:
        """What a worker needs to run the task: plain data, cheap to pickle."""
        return {
            "task_id": self.task_id,
            "payload": self.payload,
            "result_serializers": self.result_serializers,
            "resource_specification": self.resource_specification,
            "received": self.received,
        }


def task_timeout(spec: dict[str, Any] | None, default: float) -> float | None:
    """The task's ``resource_specification["timeout"]``, else the endpoint's default."""
    raw = (spec or {}).get("timeout", (spec or {}).get("walltime"))
    try:
        value = float(raw) if raw is not None else float(default)
    except (TypeError, ValueError):
        value = float(default)
    return value if value > 0 else None


def transitions(received: float, **more: float) -> dict[str, float]:
    return {"received": received, **more}


def failure(
    task_id: str,
    reason: str,
    received: float,
    *,
    started: float | None = None,
    **extra: Any,
) -> Outcome:
    """A failed outcome for a task the endpoint could not run to completion."""
    now = time.time()
    steps = transitions(received, running=started) if started else transitions(received)
    steps["failed"] = now
    return {
        "task_id": task_id,
        "status": "failed",
        "exception": reason,
        "details": {"task_transitions": steps, "hostname": HOSTNAME, **env_details(), **extra},
    }


def cancelled(task: Task, note: str = "", *, started: float | None = None,
              **extra: Any) -> Outcome:
    """The one outcome of a task cancelled at the service.

    Engines deliver it in place of the task's result so the endpoint's accounting
    (capacity, unsent results) stays right; the service acknowledges it and keeps the
    task cancelled.
    """
    reason = "farcall endpoint: the task was cancelled" + (f"; {note}" if note else "")
    return failure(task.task_id, reason, task.received, started=started, **extra)
