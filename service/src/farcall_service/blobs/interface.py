"""The blob store seam: where results and payloads too large for a message are kept.

A message (an HTTP answer, the WebSocket channel, the broker) carries a reference to
a blob, never its bytes; the bytes go straight from a request's body into the store
and from the store into a response's body, a chunk at a time, so that no service
process holds a whole blob in memory.

Lifecycle of a blob store, in order:

1. built by its plugin's ``BlobStoreType.factory(settings)`` (nothing reached yet);
2. any number of :meth:`BlobStore.put`, :meth:`BlobStore.open`,
   :meth:`BlobStore.delete` and :meth:`BlobStore.keys`, from any thread, at once;
3. :meth:`BlobStore.close`, once.

Who owns a blob and which task it belongs to is the service's record (the ``blobs``
table), not the store's: a store only keeps bytes under keys it makes. The service
sweeps the blobs whose task is gone (``farcall_service.blobs.sweeping``).
``farcall_service.testing.blob_store_contract`` is the contract every store runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

#: Bytes a store reads at a time: what a download holds in memory per response.
CHUNK_SIZE = 1024 * 1024


class BlobStoreError(RuntimeError):
    """A blob store cannot do what it was asked; the message says why."""


class BlobNotFound(BlobStoreError):
    """No blob has this key (never made, or deleted)."""


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: the key its store made, and its size in bytes."""

    key: str
    size: int


class BlobStore(Protocol):
    """Bytes under keys the store makes; every method may block (call from a thread)."""

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        """Store the bytes of ``chunks`` as a new blob. If iterating ``chunks`` raises
        (a client went away, a size limit), nothing is left behind and the exception
        propagates. The blob is readable by :meth:`open` once this returns, from
        every service process that uses the same store."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """The blob's bytes, in chunks of at most ``CHUNK_SIZE``. Raises
        :class:`BlobNotFound` at once (before the first chunk is asked for) for an
        unknown key; closing the iterator early releases what it holds."""
        ...

    def delete(self, key: str) -> bool:
        """Remove a blob; False when there was none (deleting twice is no error)."""
        ...

    def keys(self) -> Iterator[str]:
        """Every blob's key, in no order: for finding blobs the service forgot."""
        ...

    def close(self) -> None:
        """Release connections and handles; idempotent."""
        ...
