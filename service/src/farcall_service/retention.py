"""How long ended tasks are kept, and what a read of one deleted since answers.

An ended task is kept ``result_retention`` seconds after it ended, then purged
(``purging``). The purge keeps nothing, not even a tombstone: a task id is a version 7
UUID (``ids``) whose first 48 bits are the millisecond it was made, and a task ends
after it is made, so every purged task's id is older than the retention period. A
task id that is not found and is that old therefore reads "expired"; a younger one
reads "not found". That costs no row and no write, and is exact for every purged
task; an id never used that looks that old reads "expired" too.

The answer depends on the id and the clock alone, so it tells nothing about anyone
else's tasks: another user's task, purged or not, answers as an unknown id of the
same age does.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import TYPE_CHECKING, Any

from farcall_service.errors import ApiError, not_found

if TYPE_CHECKING:
    from farcall_service.auth import Identity
    from farcall_service.storage.interface import Task

#: The ``code`` of the answer for an expired task (HTTP 410 Gone).
EXPIRED = "TASK_EXPIRED"


def made_at(task_id: str) -> float | None:
    """When the service made ``task_id`` (seconds), if it is a version 7 UUID."""
    try:
        value = uuid.UUID(task_id)
    except ValueError:
        return None
    if value.version != 7:
        return None
    return (value.int >> 80) / 1000


def expired(task_id: str, retention: float, now: float | None = None) -> bool:
    """Whether a task id the caller cannot see names a task purged by now, or that
    would have been: made more than ``retention`` seconds ago (0: nothing expires)."""
    if retention <= 0:
        return False
    made = made_at(task_id)
    return made is not None and made < (time.time() if now is None else now) - retention


def describe(seconds: float) -> str:
    """``seconds`` as people say it: "14 days", "2 hours", "2 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    shown = f"{seconds:g}"
    return f"{shown} second{'' if shown == '1' else 's'}"


def message(task_id: str, retention: float) -> str:
    return (f"task {task_id} has expired: the service keeps a task and its result for "
            f"{describe(retention)} after it ends, then deletes them")


def expired_error(task_id: str, retention: float) -> ApiError:
    return ApiError(410, EXPIRED, message(task_id, retention))


def expired_document(task_id: str, retention: float) -> dict[str, Any]:
    """An expired task in a batch of task documents. It reads as ``failed`` with the
    reason as its exception text: the official SDK takes any other status for
    pending and would wait for ever. ``expired`` tells the farcall SDK."""
    text = message(task_id, retention)
    return {"task_id": task_id, "status": "failed", "expired": True, "exception": text,
            "reason": text, "completion_t": None}


def visible_task(who: Identity, task: Task | None, task_id: str, retention: float) -> Task:
    """The caller's task; else 410 if the id is old enough to have expired, else 404."""
    if task is not None and task.owner_id == who.user_id:
        return task
    if expired(task_id, retention):
        raise expired_error(task_id, retention)
    raise not_found("task", task_id)


def expired_among(task_ids: list[str], seen: set[str], retention: float) -> list[str]:
    """The ids among ``task_ids`` (in canonical form, as the routes make them) the
    caller was not shown (not in ``seen``) that read as expired.

    On every wait and batch status, so without parsing each id: a version 7 UUID's
    time is its first twelve hex digits (``xxxxxxxx-xxxx``), so one string comparison
    with the cut-off in that form tells an old id from a young one."""
    if retention <= 0:
        return []
    ms = format(math.ceil((time.time() - retention) * 1000), "012x")
    cutoff = f"{ms[:8]}-{ms[8:]}"
    return [tid for tid in task_ids
            if tid < cutoff and tid[14:15] == "7" and tid not in seen]
