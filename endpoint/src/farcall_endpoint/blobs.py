"""Large results and payloads through the service's blob store (``farcall.blob_refs``).

A result over ``blob_threshold`` is uploaded, streamed from the outcome's text, before
its report, which then carries the reference; a payload the submitter uploaded
arrives as a reference and is downloaded before the task runs. Both need a link
that can (``upload_result``/``fetch_payload``, as the ``farcall`` link can); with
another link, results stay inline and a referenced payload fails its task.
"""

from __future__ import annotations

from typing import Any

from farcall.blob_refs import HEADER, MIN_THRESHOLD, parse_reference, payload_blob
from farcall.serialize import pack_buffers, unpack_buffers

from farcall_endpoint.tasks import Outcome, Task

_MARK = f"\n{HEADER}blob "


def could_upload(outcome: Outcome) -> bool:
    """Whether a result is long enough that some threshold could send it as a blob."""
    result = outcome.get("result")
    return (outcome.get("status") == "success" and isinstance(result, str)
            and len(result) > MIN_THRESHOLD and parse_reference(result) is None)


def referenced_payload(task: Task) -> str | None:
    """The key of the blob holding the task's args and kwargs, if they are in one."""
    if _MARK not in task.payload[-300:]:
        return None
    buffers = unpack_buffers(task.payload)
    ref = payload_blob(buffers)
    return None if ref is None else ref.key


def resolve_payload(link: Any, task: Task, key: str) -> None:
    """Replace the task's payload reference with the payload it names."""
    fetch = getattr(link, "fetch_payload", None)
    if fetch is None:
        raise RuntimeError(f"the {type(link).__name__} link cannot fetch payload blobs")
    code = unpack_buffers(task.payload)[0]
    task.payload = pack_buffers([code]) + fetch(task.task_id, key)
