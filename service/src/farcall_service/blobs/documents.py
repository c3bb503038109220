"""A task document whose result is a blob, for clients that cannot follow references.

The official SDK reads a result from ``GET /v2/tasks/{id}`` and nowhere else, so
there the document is written out with the blob's bytes in its ``result``, streamed
from the store as they are read (``transfer.json_document``): the service's memory
does not grow with the result. farcall's SDK asks for the reference instead
(``?result=reference``) and downloads the bytes from ``/farcall/v1/tasks/{id}/result``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.responses import StreamingResponse

from farcall_service.blobs.interface import BlobNotFound
from farcall_service.blobs.transfer import json_document

if TYPE_CHECKING:
    from farcall.blob_refs import BlobReference

    from farcall_service.context import ServiceContext


async def streamed_document(ctx: ServiceContext, document: dict[str, Any],
                            ref: BlobReference, owner_id: str) -> StreamingResponse | None:
    """The document with its result read from the blob store; None when the blob is
    not the task's (its reference is then shown as it is)."""
    record = await ctx.in_thread(ctx.store.get_blob, ref.key)
    if record is None or record.owner_id != owner_id or record.task_id != document["task_id"]:
        return None
    try:
        chunks = await ctx.in_thread(ctx.blobs.open, ref.key)
    except BlobNotFound:
        return None
    head = {k: v for k, v in document.items() if k != "result"}
    return StreamingResponse(json_document(head, "result", chunks, {}),
                             media_type="application/json")
