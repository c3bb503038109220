"""Hostile bytes get a DeserializationError: never a crash, a hang, a huge allocation, or
anything but plain data. Reading has no hook that imports or calls by name; these
payloads try the hooks it does have."""

from __future__ import annotations

import base64
import struct
import tracemalloc
from typing import Any

import msgpack
import pytest
from farcall.errors import DeserializationError
from farcall.serialize import Serializer
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def mp() -> Serializer:
    return Serializer(data_strategy="mp")


def wire(raw: bytes) -> str:
    return "mp\n" + base64.b64encode(raw).decode("ascii")


def marker(code: int, data: bytes = b"") -> msgpack.ExtType:
    return msgpack.ExtType(code, data)


def packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def refused(mp: Serializer, raw: bytes, match: str | None = None) -> DeserializationError:
    with pytest.raises(DeserializationError, match=match) as caught:
        mp.deserialize(wire(raw))
    return caught.value


def nested(levels: int, head: bytes, tail: bytes = b"\xc0") -> bytes:
    return head * levels + tail


@pytest.mark.parametrize(
    "raw",
    [
        nested(100_000, b"\x91"),  # arrays of one array
        nested(100_000, b"\x81\xc0"),  # maps whose value is a map
        nested(100_000, b"\x92\xd4\x01\x00"),  # tuples of one tuple, through the marker
        nested(100_000, b"\x81\x91"),  # keys that are arrays, all the way down
    ],
    ids=["arrays", "maps", "tuples", "keys"],
)
def test_deep_nesting_is_refused(mp: Serializer, raw: bytes) -> None:
    refused(mp, raw)


#: Headers declaring 4 GiB of content, followed by almost nothing.
HUGE = {
    "array": b"\xdd\xff\xff\xff\xff",
    "map": b"\xdf\xff\xff\xff\xff",
    "str": b"\xdb\xff\xff\xff\xff",
    "bin": b"\xc6\xff\xff\xff\xff",
    "ext": b"\xc9\xff\xff\xff\xff\x01",
    "array in array": b"\x92\xc0\xdd\xff\xff\xff\xff\xc0",
    "numpy shape": packed([marker(10), "<f8", [2**40, 2**40], b"\x00" * 8]),
    "numpy shape overflowing int64": packed([marker(10), "<f8", [2**62, 2**62, 16], b""]),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_declared_lengths_allocate_nothing(mp: Serializer, name: str) -> None:
    import numpy  # noqa: F401  # imported before measuring: its import allocates

    payload = wire(HUGE[name] + b"\x00" * 16)
    tracemalloc.start()
    try:
        with pytest.raises(DeserializationError):
            mp.deserialize(payload)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes allocated for a {len(payload)}-character payload"


@pytest.mark.parametrize("code", [0, 12, 42, 127, -2, -128])
def test_unknown_extension_types_are_refused(mp: Serializer, code: int) -> None:
    signed = struct.pack(">b", code)
    refused(mp, b"\x92\x01\xc7\x07" + signed + b"payload")  # [1, ext(code, b"payload")]
    refused(mp, b"\x92\xc7\x00" + signed + b"\x01")  # [ext(code, b""), 1]


def test_a_marker_with_content_is_refused(mp: Serializer) -> None:
    refused(mp, packed([marker(1, b"\x00"), 1]), match="unknown extension type 1")


@pytest.mark.parametrize(
    "value",
    [
        marker(1),  # alone
        {"k": marker(1)},  # as a map value
        {marker(8): 1},  # as a map key
        [1, marker(1)],  # not at the head
        [marker(1), marker(2)],  # a second one inside
        [marker(2), [3, marker(3)]],  # one deeper, not at a head
    ],
    ids=["alone", "value", "key", "not-head", "two", "deeper"],
)
def test_markers_outside_the_head_of_an_array_are_refused(mp: Serializer, value: Any) -> None:
    refused(mp, packed(value), match="marker|unhashable")


@pytest.mark.parametrize(
    "value",
    [
        [marker(4), "not bytes"],
        [marker(4)],
        [marker(5), 2026, 13, 1, 0, 0, 0, 0, 0, None, None],  # month 13
        [marker(5), 2026, 1, 1, 0, 0, 0, 0, 0, 86_400_000_000, None],  # offset of a day
        [marker(5), 2026, 1, 1, 0, 0, 0, 0, 0, 0, 5],  # a name that is no str
        [marker(5), 2026.0, 1, 1, 0, 0, 0, 0, 0, None, None],  # a float year
        [marker(6), 2026, 2, 30],
        [marker(7), 10**18, 0, 0],
        [marker(8), b"\x00" * 15],
        [marker(9), 3],
        [marker(9), "not a number"],
        [marker(2), [1]],  # a set of a list
        [marker(10), "O", [1], b"\x00" * 8],  # objects: pickles
        [marker(10), "i4,i4", [1], b"\x00" * 8],  # structured
        [marker(10), "V8", [1], b"\x00" * 8],
        [marker(10), "<f8", [-1], b""],
        [marker(10), "<f8", [1] * 40, b"\x00" * 8],
        [marker(10), "<f8", [3], b"\x00" * 16],
        [marker(10), "no such dtype", [1], b"\x00"],
        [marker(10), ["<f8"], [1], b"\x00" * 8],
        [marker(11), "<f8", b"\x00" * 4],
        [marker(11), "O", b"\x00" * 8],
    ],
    ids=lambda v: f"code{v[0].code}" if isinstance(v, list) and v else "v",
)
def test_bad_fields_are_refused(mp: Serializer, value: Any) -> None:
    refused(mp, packed(value))


@pytest.mark.parametrize(
    "body",
    [
        "mp\n" + "kscA" * 3 + "!",  # not base64
        "mp\nwA==\n",  # a line break
        "mp\n" + base64.b64encode(b"\xa3\xff\xfe\xfd").decode(),  # a str that is no UTF-8
        "mp\n" + base64.b64encode(b"\xc0\xc0").decode(),  # data after the value
        "mp\n" + base64.b64encode(b"\xc1").decode(),  # msgpack's never-used byte
        "mp\n" + base64.b64encode(struct.pack(">B", 0x92) + b"\xc0").decode(),  # truncated
        "mp\né",
    ],
)
def test_malformed_bodies_are_refused(mp: Serializer, body: str) -> None:
    with pytest.raises(DeserializationError):
        mp.deserialize(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_read_as_plain_data_or_are_refused(raw: bytes) -> None:
    serializer = Serializer(data_strategy="mp")
    try:
        value = serializer.deserialize(wire(raw))
    except DeserializationError:
        return
    assert plain(value), repr(value)


def plain(value: Any) -> bool:
    import datetime
    import decimal
    import uuid

    if isinstance(value, (list, tuple, set, frozenset)):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(plain(k) and plain(v) for k, v in value.items())
    return type(value) in (
        type(None),
        bool,
        int,
        float,
        str,
        bytes,
        datetime.datetime,
        datetime.date,
        datetime.timedelta,
        uuid.UUID,
        decimal.Decimal,
    )
