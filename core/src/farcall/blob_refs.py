"""References to blobs: what travels in place of a result or payload too large for a
message (farcall's own clients only).

A serialized value always starts with a two-character strategy identifier, which
never contains ``:``; a reference starts with ``::`` and so can never be mistaken
for one. A result reference stands where the result would (``task["result"]``); a
payload reference is a payload whose two buffers (args, kwargs) are both the same
reference, meaning "the packed args and kwargs are in this blob", so it passes every
check a payload must. The bytes themselves go through the blob routes:

- ``PUT /farcall/v1/tasks/{task_id}/result-blob``: the endpoint running the task
  uploads its result;
- ``GET /farcall/v1/tasks/{task_id}/result``: its owner downloads it;
- ``POST /farcall/v1/blobs``: a user uploads a payload;
- ``GET /farcall/v1/tasks/{task_id}/payload-blob?key=...``: the endpoint
  holding the task downloads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from farcall.serialize import DeserializationError, pack_buffers, unpack_buffers

#: The header of a reference: never a strategy identifier (those have no ``:``).
HEADER = "::\n"
#: The error code (``MaxResultSizeExceeded``) and text shape of the official endpoint.
MAX_RESULT_SIZE_EXCEEDED = "MaxResultSizeExceeded"
#: Bytes over which the farcall SDK and endpoint send a value as a blob, unless the
#: service says otherwise (``GET /farcall/v1/blobs/limits``).
DEFAULT_THRESHOLD = 1024 * 1024
#: The lowest threshold a service may set: values this small never need asking it.
MIN_THRESHOLD = 64 * 1024


@dataclass(frozen=True)
class BlobReference:
    key: str
    size: int

    def text(self) -> str:
        return f"{HEADER}blob {self.size} {self.key}"


def parse_reference(value: object) -> BlobReference | None:
    """The reference ``value`` is, or None for anything else (a serialized value)."""
    if not isinstance(value, str) or not value.startswith(HEADER) or len(value) > 200:
        return None
    parts = value[len(HEADER):].split(" ")
    if len(parts) != 3 or parts[0] != "blob" or not parts[1].isdigit() or not parts[2]:
        return None
    return BlobReference(parts[2], int(parts[1]))


def payload_reference(ref: BlobReference) -> str:
    """A task payload that says its args and kwargs are in the blob ``ref``."""
    return pack_buffers([ref.text(), ref.text()])


def payload_blob(buffers: list[str]) -> BlobReference | None:
    """The blob the args and kwargs of unpacked task buffers (``[function, args,
    kwargs]`` or ``[args, kwargs]``) are in, if they are a payload reference."""
    if len(buffers) < 2 or buffers[-1] != buffers[-2]:
        return None
    return parse_reference(buffers[-1])


def payload_reference_of(payload: str) -> BlobReference | None:
    """:func:`payload_blob` of a packed payload; None for an ordinary one."""
    if HEADER not in payload[:64]:  # a reference's first buffer starts within its length
        return None
    try:
        return payload_blob(unpack_buffers(payload))
    except DeserializationError:
        return None


def max_result_size_exceeded(size: int, limit: int, what: str = "result") -> str:
    """The failure text of a value over the limit, in the official endpoint's words
    (``MaxResultSizeExceeded``), which the official SDK's tests look for."""
    return (f"{MAX_RESULT_SIZE_EXCEEDED}: Task {what} of {size}B exceeded current limit "
            f"of {limit}B")
