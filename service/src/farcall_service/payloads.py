"""Checks that what clients send really is the wire format, before it is stored.

A malformed payload would otherwise be accepted, queued, and fail on an endpoint;
refusing it at the door gives the submitter a 400 naming the problem.
"""

from __future__ import annotations

from farcall.serialize import DeserializationError, pack_buffers, unpack_buffers

from farcall_service.errors import bad_request


def _has_header(buffer: str) -> bool:
    return len(buffer) >= 3 and buffer[2] == "\n" and buffer[:2].isprintable()


def check_function_code(code: str) -> str:
    """``function_code`` must be one packed buffer with a strategy header."""
    try:
        buffers = unpack_buffers(code)
    except DeserializationError as exc:
        raise bad_request("INVALID_FUNCTION_CODE", f"function_code: {exc}") from None
    if len(buffers) != 1 or not _has_header(buffers[0]):
        raise bad_request(
            "INVALID_FUNCTION_CODE",
            "function_code must be exactly one packed buffer starting with a "
            f"two-character strategy header; got {len(buffers)} buffer(s)",
        )
    return code


def source_function_code(function_name: str, source: str) -> str:
    """What ``serialized: false`` source becomes: a PureSourceTextInspect (``st``) buffer."""
    return pack_buffers([f"st\n{function_name}:{source}"])


def check_task_payload(payload: str) -> str:
    """A task payload must be two packed buffers (args, kwargs), each with a header."""
    try:
        buffers = unpack_buffers(payload)
    except DeserializationError as exc:
        raise bad_request("INVALID_PAYLOAD", f"task payload: {exc}") from None
    if len(buffers) != 2 or not all(_has_header(b) for b in buffers):
        raise bad_request(
            "INVALID_PAYLOAD",
            "a task payload must be exactly two packed buffers (args, kwargs), each "
            f"starting with a strategy header; got {len(buffers)} buffer(s)",
        )
    return payload
