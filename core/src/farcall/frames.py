"""The channels' messages: JSON in text frames, or msgpack in binary frames.

Measured on typical channel messages (encode and decode, one side, by
``benchmarks/serialize.py``): msgpack takes 0.15 to 0.42 of JSON's time for submissions
and result pushes and 0.03 for a message carrying a 1 MB result, whose base64 text JSON scans for
characters to escape and msgpack copies. So a channel speaks msgpack when both ends can:
the service offers it in its first message (``"frames": ["json", "msgpack"]``), the
client then sends binary frames, and the service answers (and pushes) in the form of the
client's last request. Text frames stay JSON, so older clients and services are
unaffected.

A message msgpack cannot carry (an integer beyond 64 bits in a free-form field) goes as
JSON text instead; both ends read either form at any time.
"""

from __future__ import annotations

import json
from typing import Any

#: What ``"frames"`` in the service's first message may name.
JSON, MSGPACK = "json", "msgpack"


class TooDeep(ValueError):
    """A binary message nests deeper than msgpack's reader goes."""


def offered() -> list[str]:
    """The forms this process reads and writes, for the service's first message."""
    try:
        import msgpack  # noqa: F401
    except ImportError:  # pragma: no cover - msgpack is a dependency of farcall
        return [JSON]
    return [JSON, MSGPACK]


def encode(message: Any, binary: bool) -> str | bytes:
    """``message`` as msgpack when ``binary`` (and msgpack carries it), else JSON text."""
    if binary:
        import msgpack

        try:
            return msgpack.packb(message, use_bin_type=True)
        except (OverflowError, TypeError, ValueError):
            pass  # JSON carries big integers and deeper nesting
    return json.dumps(message, separators=(",", ":"))


def _refuse_extension(code: int, _data: bytes) -> Any:
    raise ValueError(f"extension type {code} has no place in a channel message")


def decode(data: str | bytes) -> Any:
    """A message from a frame: text is JSON, binary is msgpack. ValueError (TooDeep
    for nesting beyond msgpack's reader) when it is neither; RecursionError from
    JSON nested too deep, as ``json.loads`` raises it."""
    if isinstance(data, str):
        return json.loads(data)
    import msgpack

    try:
        return msgpack.unpackb(data, raw=False, ext_hook=_refuse_extension)
    except msgpack.StackError:
        raise TooDeep("the message nests too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from None
