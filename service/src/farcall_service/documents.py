"""Tasks as the HTTP API and the channels show them."""

from __future__ import annotations

from typing import Any

from farcall_service.storage.interface import CANCELLED, Task


def task_document(task: Task, official: bool = True) -> dict[str, Any]:
    """A task as the official SDK reads it: ``completion_t`` stays null until done.

    ``endpoint_id`` (which the official SDK ignores) tells the farcall SDK whose
    result it reads: it reads code-capable strategies only from endpoints it trusts.

    A cancelled task reads as ``failed`` with its cancel as the exception (the
    official Client takes any status it does not know for pending, and would wait for
    ever) and ``"cancelled": true``; farcall's own routes (``official=False``: the
    result waits and the channel) say ``cancelled``.
    """
    cancelled = task.status == CANCELLED
    doc: dict[str, Any] = {
        "task_id": task.id,
        "status": "failed" if cancelled and official else task.status,
        "task_group_id": task.task_group_id,
        "endpoint_id": task.endpoint_id,
        "completion_t": None,
    }
    if task.status == "success":
        doc["result"] = task.result or ""
    elif task.status == "failed" or cancelled:
        doc["exception"] = task.exception or "the task failed without a traceback"
        if task.exception_data:
            doc["exception_data"] = task.exception_data
        if cancelled:
            doc["cancelled"] = True
    else:
        return doc
    doc["completion_t"] = repr(task.completion_t)
    doc["details"] = task.details or {}
    return doc
