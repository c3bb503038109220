"""Packed buffers: the length-prefixed framing of the Globus Compute wire format.

``pack_buffers(["ab", "c"]) == "2\\nab1\\nc"``. Lengths count Unicode code points.
This is the one implementation the SDK, the service and the endpoint all use, so
it is strict: anything but a well-formed frame is a :class:`DeserializationError`.
"""

from __future__ import annotations

from farcall.errors import DeserializationError

#: Longer length fields would describe payloads far beyond any limit we accept.
_MAX_LENGTH_DIGITS = 20


def pack_buffers(buffers: list[str]) -> str:
    """Frame each buffer with its length and concatenate them."""
    return "".join([f"{len(b)}\n{b}" for b in buffers])


def unpack_buffers(packed: str) -> list[str]:
    """Split a packed string into its buffers, rejecting anything malformed."""
    if not isinstance(packed, str):
        raise DeserializationError(f"packed buffers must be a str, not {type(packed).__name__}")
    buffers: list[str] = []
    pos, end = 0, len(packed)
    while pos < end:
        number = len(buffers) + 1
        newline = packed.find("\n", pos, pos + _MAX_LENGTH_DIGITS + 1)
        if newline < 0:
            raise DeserializationError(
                f"packed buffer {number} at offset {pos}: expected a length of at most "
                f"{_MAX_LENGTH_DIGITS} digits followed by a newline"
            )
        digits = packed[pos:newline]
        if not (digits.isascii() and digits.isdigit()):
            negative = digits.startswith("-") and digits[1:].isascii() and digits[1:].isdigit()
            what = "negative" if negative else "not a non-negative integer"
            raise DeserializationError(
                f"packed buffer {number} at offset {pos}: length {digits!r} is {what}"
            )
        start = newline + 1
        stop = start + int(digits)
        if stop > end:
            raise DeserializationError(
                f"packed buffer {number} is truncated: its length says {int(digits)} "
                f"characters but only {end - start} remain"
            )
        buffers.append(packed[start:stop])
        pos = stop
    return buffers
