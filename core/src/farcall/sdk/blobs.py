"""Large payloads and results: sent to and read from the service's blob store
(``farcall.blob_refs``) instead of inside submissions and task documents.

A payload over the threshold is uploaded first and submitted as a reference; a
result the service keeps as a blob arrives as a reference and is downloaded, a chunk
at a time, when it is read. Both need a transport that streams bodies
(``upload``/``download``, as the ``http`` transport does).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from farcall.blob_refs import (
    DEFAULT_THRESHOLD,
    MAX_RESULT_SIZE_EXCEEDED,
    max_result_size_exceeded,
    parse_reference,
)
from farcall.errors import FarcallError
from farcall.sdk.errors import FarcallAPIError

if TYPE_CHECKING:
    from farcall.plugins.types import Transport

#: Characters of a payload or result sent per chunk.
CHUNK_CHARS = 1024 * 1024
#: Seconds an upload or download of one blob may take.
TRANSFER_TIMEOUT = 3600.0


def streaming(transport: Transport, method: str) -> Any:
    call = getattr(transport, method, None)
    if call is None:
        raise FarcallError(
            f"the {type(transport).__name__} transport cannot stream bodies ({method}), "
            "which values over the blob threshold need: use the http transport")
    return call


def encoded(text: str) -> tuple[Iterator[bytes], int]:
    """``text`` as UTF-8 in chunks, and its size in bytes, without a whole copy."""
    if text.isascii():
        size = len(text)
    else:
        size = sum(len(text[i:i + CHUNK_CHARS].encode()) for i in range(0, len(text),
                                                                          CHUNK_CHARS))
    chunks = (text[i:i + CHUNK_CHARS].encode() for i in range(0, len(text), CHUNK_CHARS))
    return chunks, size


def service_limits(transport: Transport) -> dict[str, int]:
    """The service's ``blob_threshold`` and ``max_result_size``; the defaults from a
    service without blob routes."""
    try:
        answer = transport.request("GET", "/farcall/v1/blobs/limits")
        return {"blob_threshold": int(answer["blob_threshold"]),
                "max_result_size": int(answer["max_result_size"])}
    except FarcallAPIError as exc:
        if exc.http_status not in (404, 405):
            raise
        return {"blob_threshold": DEFAULT_THRESHOLD, "max_result_size": 0}


def check_size(transport: Transport, size: int, what: str) -> None:
    """Refuse a value over the service's ``max_result_size`` before sending any of it
    (a service answers a body too large before reading it, and the connection
    breaks under the sender): 413 ``MaxResultSizeExceeded``, as the service would."""
    limit = int(transport.request("GET", "/farcall/v1/blobs/limits")["max_result_size"])
    if size > limit:
        raise FarcallAPIError("PUT" if what == "result" else "POST", "/farcall/v1/blobs", 413,
                              MAX_RESULT_SIZE_EXCEEDED,
                              max_result_size_exceeded(size, limit, what))


def upload_payload(transport: Transport, payload: str) -> str:
    """Upload a task payload; return the payload to submit in its place."""
    chunks, size = encoded(payload)
    check_size(transport, size, "payload")
    answer = streaming(transport, "upload")("POST", "/farcall/v1/blobs", chunks, size=size,
                                            timeout=TRANSFER_TIMEOUT)
    return str(answer["payload"])


def with_result(transport: Transport, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its result downloaded, when the service sent a reference."""
    if parse_reference(document.get("result")) is None:
        return document
    task_id = document["task_id"]
    chunks = streaming(transport, "download")(f"/farcall/v1/tasks/{task_id}/result",
                                               timeout=TRANSFER_TIMEOUT)
    return {**document, "result": b"".join(chunks).decode()}
