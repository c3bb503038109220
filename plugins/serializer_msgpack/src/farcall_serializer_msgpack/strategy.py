"""MsgpackData (``mp``): plain data as base64 of msgpack, read without running code.

What msgpack has no type for travels as an array whose first item is an empty
extension value, a *marker* naming the type (``[<tuple>, 1, 2]``), and is rebuilt by
the unpacker's ``list_hook`` once the array is read. So there is no nested unpacking
and no recursion of ours: the unpacker's fixed stack bounds nesting, its limits
(derived from the input's length) bound every declared length, and the only things a
payload can make are the types listed here, built by their constructors. Every marker
the unpacker sees must head an array, or the payload is refused.

Writing is strict: ``strict_types`` hands every object that is not exactly a msgpack
type to :func:`_default`, which knows the types below and refuses anything else (a
subclass included), so the combining strategy and ``result_serializers`` fall through
to the next strategy instead of getting a lookalike back.
"""

from __future__ import annotations

import binascii
import datetime as dt
import decimal
import sys
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import msgpack
from farcall.errors import DeserializationError, SerializationError
from farcall.serialize.base import SerializationStrategy

#: numpy dtype kinds carried: bool, integers, floats, complex, datetime64, timedelta64,
#: bytes and str of fixed width. Not objects (pickles), not structured or void.
_NUMPY_KINDS = frozenset("biufcmMSU")
#: Deeper arrays are refused on both sides (numpy itself allows 64 dimensions).
_MAX_DIMENSIONS = 32


def _fail(message: str) -> NoReturn:
    raise DeserializationError(f"MsgpackData (mp): {message}")


def _fields(items: list[Any], *types: Any) -> list[Any]:
    """The fields of a marked array, each of the given type (a tuple of types: any)."""
    if len(items) != len(types):
        _fail(f"expected {len(types)} fields, got {len(items)}")
    for value, kind in zip(items, types, strict=True):
        if not (type(value) in kind if isinstance(kind, tuple) else type(value) is kind):
            _fail(f"field of type {type(value).__name__} where {kind} belongs")
    return items


# -- building from marked arrays (reading) ---------------------------------------------


def _big_int(items: list[Any]) -> int:
    (raw,) = _fields(items, bytes)
    return int.from_bytes(raw, "big", signed=True)


def _datetime(items: list[Any]) -> dt.datetime:
    year, month, day, hour, minute, second, micro, fold, offset, name = _fields(
        items, int, int, int, int, int, int, int, int, (int, type(None)), (str, type(None))
    )
    tz = None
    if offset is not None:
        delta = dt.timedelta(microseconds=offset)
        tz = dt.timezone(delta) if name is None else dt.timezone(delta, name)
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz, fold=fold)


def _date(items: list[Any]) -> dt.date:
    return dt.date(*_fields(items, int, int, int))


def _timedelta(items: list[Any]) -> dt.timedelta:
    days, seconds, micro = _fields(items, int, int, int)
    return dt.timedelta(days=days, seconds=seconds, microseconds=micro)


def _uuid(items: list[Any]) -> uuid.UUID:
    (raw,) = _fields(items, bytes)
    return uuid.UUID(bytes=raw)


def _decimal(items: list[Any]) -> decimal.Decimal:
    (text,) = _fields(items, str)
    return decimal.Decimal(text)


def _numpy_dtype(text: str) -> Any:
    import numpy as np

    dtype = np.dtype(text)
    if (
        dtype.kind not in _NUMPY_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.itemsize == 0
    ):
        _fail(f"numpy dtype {text!r} is not carried")
    return dtype


def _ndarray(items: list[Any]) -> Any:
    import numpy as np

    text, shape, raw = _fields(items, str, list, bytes)
    dtype = _numpy_dtype(text)
    if len(shape) > _MAX_DIMENSIONS or not all(type(n) is int and n >= 0 for n in shape):
        _fail(f"bad numpy shape {shape[: _MAX_DIMENSIONS + 1]!r}")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(raw):
        _fail(f"numpy shape {shape} of {text} needs {count * dtype.itemsize} bytes, got {len(raw)}")
    # A copy: the array is the caller's to write to, as one unpickled would be.
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()


def _numpy_scalar(items: list[Any]) -> Any:
    import numpy as np

    text, raw = _fields(items, str, bytes)
    dtype = _numpy_dtype(text)
    if len(raw) != dtype.itemsize:
        _fail(f"a numpy {text} scalar is {dtype.itemsize} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, count=1)[0]


class _Marker:
    """An empty extension value heading an array: the array stands for ``build(rest)``."""

    __slots__ = ("code", "build", "ext")

    def __init__(self, code: int, build: Callable[[list[Any]], Any]) -> None:
        self.code = code
        self.build = build
        self.ext = msgpack.ExtType(code, b"")


#: Extension codes are part of the format: never renumber, only add.
TUPLE = _Marker(1, tuple)
SET = _Marker(2, set)
FROZENSET = _Marker(3, frozenset)
BIG_INT = _Marker(4, _big_int)
DATETIME = _Marker(5, _datetime)
DATE = _Marker(6, _date)
TIMEDELTA = _Marker(7, _timedelta)
UUID = _Marker(8, _uuid)
DECIMAL = _Marker(9, _decimal)
NDARRAY = _Marker(10, _ndarray)
NUMPY_SCALAR = _Marker(11, _numpy_scalar)
_MARKERS = {
    m.code: m
    for m in (
        TUPLE,
        SET,
        FROZENSET,
        BIG_INT,
        DATETIME,
        DATE,
        TIMEDELTA,
        UUID,
        DECIMAL,
        NDARRAY,
        NUMPY_SCALAR,
    )
}


class _Reading:
    """The hooks of one unpacking, counting markers seen against markers used."""

    __slots__ = ("unused",)

    def __init__(self) -> None:
        self.unused = 0

    def ext_hook(self, code: int, data: bytes) -> _Marker:
        marker = _MARKERS.get(code)
        if marker is None or data:
            _fail(f"unknown extension type {code} ({len(data)} bytes)")
        self.unused += 1
        return marker

    def list_hook(self, items: list[Any]) -> Any:
        if items and type(items[0]) is _Marker:
            self.unused -= 1
            return items[0].build(items[1:])
        return items


# -- marking what msgpack has no type for (writing) --------------------------------------


def _datetime_fields(value: dt.datetime) -> list[Any]:
    tz = value.tzinfo
    offset = name = None
    if tz is not None:
        if type(tz) is not dt.timezone:
            raise SerializationError(
                f"MsgpackData (mp) carries datetimes that are naive or have a fixed-offset "
                f"datetime.timezone, not tzinfo {type(tz).__name__}"
            )
        delta = tz.utcoffset(None)
        offset = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        given = tz.tzname(None)
        name = None if given == dt.timezone(delta).tzname(None) else given
    return [
        DATETIME.ext,
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
        offset,
        name,
    ]


_WRITERS: dict[type, Callable[[Any], list[Any]]] = {
    tuple: lambda v: [TUPLE.ext, *v],
    set: lambda v: [SET.ext, *v],
    frozenset: lambda v: [FROZENSET.ext, *v],
    int: lambda v: [BIG_INT.ext, v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)],
    dt.datetime: _datetime_fields,
    dt.date: lambda v: [DATE.ext, v.year, v.month, v.day],
    dt.timedelta: lambda v: [TIMEDELTA.ext, v.days, v.seconds, v.microseconds],
    uuid.UUID: lambda v: [UUID.ext, v.bytes],
    decimal.Decimal: lambda v: [DECIMAL.ext, str(v)],
}


def _numpy_fields(value: Any, np: Any) -> list[Any] | None:
    if type(value) is np.ndarray:
        kind = NDARRAY
    elif isinstance(value, np.generic):
        kind = NUMPY_SCALAR
    else:
        return None
    dtype = value.dtype
    if (
        dtype.kind not in _NUMPY_KINDS
        or dtype.fields is not None
        or dtype.itemsize == 0
        or value.ndim > _MAX_DIMENSIONS
    ):
        raise SerializationError(f"MsgpackData (mp) does not carry numpy dtype {dtype}")
    if kind is NDARRAY:
        return [NDARRAY.ext, dtype.str, list(value.shape), value.tobytes()]
    return [NUMPY_SCALAR.ext, dtype.str, value.tobytes()]


def _default(value: Any) -> Any:
    writer = _WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    np = sys.modules.get("numpy")  # a numpy value means numpy is imported already
    if np is not None:
        fields = _numpy_fields(value, np)
        if fields is not None:
            return fields
    kind = type(value)
    raise SerializationError(
        f"MsgpackData (mp) carries plain data only, not {kind.__module__}.{kind.__qualname__}"
    )


def _unb64(body: str) -> bytes:
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(body, strict_mode=True)
    import base64

    return base64.b64decode(body, validate=True)


class MsgpackData(SerializationStrategy):
    identifier = "mp"
    for_code = False

    def dumps(self, obj: Any) -> str:
        packed = msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True)
        return binascii.b2a_base64(packed, newline=False).decode("ascii")

    def loads(self, body: str) -> Any:
        if not body:
            _fail("empty body")
        reading = _Reading()
        # timestamp=3: msgpack's own timestamp type (which this strategy never writes)
        # reads as an aware datetime rather than a msgpack object.
        value = msgpack.unpackb(
            _unb64(body),
            ext_hook=reading.ext_hook,
            list_hook=reading.list_hook,
            strict_map_key=False,
            raw=False,
            timestamp=3,
        )
        if reading.unused:
            _fail(f"{reading.unused} type marker(s) outside the head of an array")
        return value
