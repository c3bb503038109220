"""Bytes between HTTP bodies and the blob store, a chunk at a time.

A request body is an async stream and a blob store blocks, so ``put`` runs in a
worker thread and pulls each chunk from the event loop (``anyio.from_thread``): at
most one chunk of a body is in this process's memory at once, however large it is.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from farcall.blob_refs import max_result_size_exceeded

from farcall_service.blobs.interface import BlobRef, BlobStore
from farcall_service.errors import ApiError


class TooLarge(Exception):
    """A body grew past its limit while it was read."""


class _Pull:
    """An async body as the plain iterator a blob store's ``put`` reads, counting as
    it goes and stopping at ``limit``."""

    def __init__(self, body: AsyncIterator[bytes], limit: int) -> None:
        self._body = body

        async def pull() -> bytes:
            return await body.__anext__()

        self._pull = pull
        self.limit = limit
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while True:
            try:
                chunk: bytes = anyio.from_thread.run(self._pull)
            except StopAsyncIteration:
                raise StopIteration from None
            if chunk:
                break
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge
        return chunk


def over_limit(size: int, limit: int, what: str) -> ApiError:
    """413 with the official name and words for a value over the limit."""
    return ApiError(413, "MaxResultSizeExceeded", max_result_size_exceeded(size, limit, what))


async def store_body(blobs: BlobStore, body: AsyncIterator[bytes], limit: int,
                     declared: int | None, what: str) -> BlobRef:
    """Stream ``body`` into ``blobs``; 413 ``MaxResultSizeExceeded`` past ``limit``."""
    if declared is not None and declared > limit:
        raise over_limit(declared, limit, what)
    pull = _Pull(body, limit)
    try:
        return await anyio.to_thread.run_sync(blobs.put, pull)
    except TooLarge:
        raise over_limit(pull.size, limit, what) from None


def json_document(head: dict[str, Any], field: str, chunks: Iterator[bytes],
                  tail: dict[str, Any]) -> Iterator[bytes]:
    """``{**head, field: <the chunks' text>, **tail}`` as JSON, a chunk at a time: a
    blob inside a JSON answer without the whole of it in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    opening = json.dumps(head, separators=(",", ":"))[:-1]
    yield f'{opening}{"," if head else ""}{json.dumps(field)}:"'.encode()
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            if text:
                yield json.dumps(text)[1:-1].encode()
        yield json.dumps(decoder.decode(b"", final=True))[1:-1].encode()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    closing = json.dumps(tail, separators=(",", ":"))[1:]
    yield f'"{"," if tail else ""}{closing}'.encode() if tail else b'"}'
