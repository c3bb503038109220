"""Every carried value comes back as the same type; everything else is refused on writing."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import uuid
import zoneinfo
from typing import Any

import numpy as np
import pytest
from farcall.errors import SerializationError
from farcall.serialize import Serializer


@pytest.fixture(scope="module")
def mp() -> Serializer:
    return Serializer(data_strategy="mp")


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, dt.datetime):
        return a == b and a.fold == b.fold and a.tzinfo == b.tzinfo and a.tzname() == b.tzname()
    return bool(a == b)


UTC_PLUS_5_30 = dt.timezone(dt.timedelta(hours=5, minutes=30))
VALUES = {
    "big ints": [2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**400, -(10**400)],
    "nested tuples": ((1, (2, (3, ()))), [(), ("a",)]),
    "tuple and frozenset keys": {(1, "a"): 1, frozenset({2}): 2, 3: (4,)},
    "sets": [set(), {1, "two", (3, 4)}, frozenset({frozenset({1})})],
    "naive datetime, fold": dt.datetime(2026, 11, 1, 1, 30, fold=1),
    "utc datetime": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
    "offset datetime": dt.datetime(2026, 1, 2, tzinfo=UTC_PLUS_5_30),
    "named offset": dt.datetime(2026, 1, 2, tzinfo=dt.timezone(-dt.timedelta(hours=5), "EST")),
    "extreme datetimes": [dt.datetime.min, dt.datetime.max],
    "dates and timedeltas": [dt.date.min, dt.date(2024, 2, 29), dt.timedelta.min, dt.timedelta.max],
    "uuids": [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()],
    "decimals": [decimal.Decimal("-0"), decimal.Decimal("1E+999999"), decimal.Decimal("Infinity")],
    "float array": np.linspace(0, 1, 1000),
    "int matrix, fortran order": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    "0-d and empty arrays": [np.array(5.0), np.zeros((0, 3)), np.array([], dtype=np.uint64)],
    "bool, complex, datetime64, str arrays": [
        np.array([True, False]),
        np.array([1 + 2j], dtype=np.complex64),
        np.array(["2026-12-06"], dtype="datetime64[D]"),
        np.array(["ab", "ü"]),
        np.array([b"x"], dtype="S3"),
        np.array([1], dtype=">i4"),
    ],
    "numpy scalars": [
        np.float64(2.5),
        np.float32(1.5),
        np.int64(-7),
        np.bool_(True),
        np.str_("s"),
        np.datetime64("2026-12-06T10:00", "m"),
    ],
    "a typical result": {
        "rows": [{"id": i, "name": f"r{i}", "score": i / 7} for i in range(100)],
        "blob": bytes(range(256)),
        "when": dt.date(2026, 12, 6),
    },
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_come_back_as_the_same_types(mp: Serializer, name: str) -> None:
    value = VALUES[name]
    wire = mp.serialize(value)
    assert wire.startswith("mp\n") and "\n" not in wire[3:]
    assert same(mp.deserialize(wire), value)


def test_arrays_come_back_writable(mp: Serializer) -> None:
    restored = mp.deserialize(mp.serialize(np.arange(4.0)))
    restored[0] = 9.0
    assert restored.tolist() == [9.0, 1.0, 2.0, 3.0]


class Colour(enum.IntEnum):
    RED = 1


class Record:
    pass


REFUSED = {
    "an object": Record(),
    "a function in a list": [len],
    "an int subclass": Colour.RED,
    "a dict subclass": collections.OrderedDict(a=1),
    "a list subclass": collections.UserList([1]),
    "a str subclass nested": {"k": [type("S", (str,), {})("x")]},
    "a zoneinfo datetime": dt.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    "complex": 1 + 2j,
    "an object array": np.array([object()]),
    "a structured array": np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
    "a masked array": np.ma.masked_array([1, 2], mask=[0, 1]),
    "a lone surrogate": "\ud800",
    "nesting deeper than msgpack packs": None,
}


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


REFUSED["nesting deeper than msgpack packs"] = _deep(100_000)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_everything_else_is_refused_with_a_serialization_error(mp: Serializer, name: str) -> None:
    with pytest.raises(SerializationError, match=r"\(mp\)"):
        mp.serialize(REFUSED[name])


def test_the_combining_strategy_falls_through_past_a_refusal() -> None:
    combined = Serializer(data_strategy="13")
    wire = combined.serialize(Colour.RED)
    members = [buffer[:2] for buffer in Serializer.unpack_buffers(wire[3:])]
    assert "mp" not in members and "00" in members
    assert combined.deserialize(wire) == Colour.RED
    members = [b[:2] for b in Serializer.unpack_buffers(combined.serialize((1, 2))[3:])]
    assert members[:2] == ["11", "00"] and "mp" in members  # official members first
