"""A stored task's result as the official Executor reads it from its queue: a
messagepack (protocol v1) ``result`` message, ``b"\\x01"`` and one line of JSON.

A failure (a cancelled task too: its error says it was cancelled) sets
``error_details`` (``RemoteExecutionError``, the last line of the
traceback as the user message) and ``data`` to the traceback text, as
``globus_compute_common.messagepack`` expects; a success's ``data`` is the serialized
result, exactly as stored, except a result kept in the blob store, which is sent as
a failure with the official ``MaxResultSizeExceeded`` code saying where to read it.
"""

from __future__ import annotations

import json
from typing import Any

from farcall.blob_refs import MAX_RESULT_SIZE_EXCEEDED, parse_reference
from farcall_service.storage.interface import CANCELLED, Task

#: messagepack protocol version 1.
VERSION = b"\x01"
FAILED = "failed"
NO_TRACEBACK = "the task failed without a traceback"


def result_fields(task: Task) -> dict[str, Any]:
    """The ``data`` of a ``result`` message."""
    error: dict[str, str] | None = None
    if task.status in (FAILED, CANCELLED):
        data = task.exception or NO_TRACEBACK
        lines = [line for line in data.strip().splitlines() if line.strip()]
        error = {"code": "RemoteExecutionError",
                 "user_message": lines[-1].strip() if lines else NO_TRACEBACK}
    elif (ref := parse_reference(task.result)) is not None:
        # Kept in the blob store: the bytes are not put on a queue (no process may hold
        # a whole large result); the Executor is told where to read it instead.
        data = (f"{MAX_RESULT_SIZE_EXCEEDED}: Task result of {ref.size}B is too large for "
                f"the result queue; it is kept by the service: read it with GET "
                f"/v2/tasks/{task.id} or farcall's Client.get_result")
        error = {"code": MAX_RESULT_SIZE_EXCEEDED, "user_message": data}
    else:
        data = task.result or ""
    return {"task_id": task.id, "data": data, "details": task.details,
            "error_details": error, "task_statuses": None}


def cancel_message(task_id: str) -> bytes:
    """A ``task_cancel`` message (the official 4.19 endpoint reads and ignores it)."""
    body = {"message_type": "task_cancel", "data": {"task_id": task_id}}
    return VERSION + json.dumps(body, separators=(",", ":")).encode()


def result_message(task: Task) -> bytes:
    body = {"message_type": "result", "data": result_fields(task)}
    return VERSION + json.dumps(body, separators=(",", ":")).encode()
