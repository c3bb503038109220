"""One script, run as ``__main__`` under farcall and under the official SDK.

Functions must live in ``__main__`` on the producing side, as they do for users, so
that code strategies send them by value; running the same file on both sides keeps
the cases identical.

Usage: ``python roundtrip.py SIDE MODE`` where SIDE is ``farcall`` or ``official`` and
MODE is ``produce`` (print serialized cases), ``consume`` (read them on stdin, print
canonical results) or ``expect`` (print canonical results of the original objects).
"""

from __future__ import annotations

import json
import random
import sys

# -- the cases ------------------------------------------------------------------------


def add(a, b=2, *, c=3):
    return a + b + c


def uses_import(n):
    import math

    return math.factorial(n)


def raises(message):
    raise ValueError(message)


def make_closure(k):
    def scaled(x):
        return x * k

    return scaled


square = lambda x: x * x  # noqa: E731


def greet(firstname, lastname):
    return f"Hello {firstname} {lastname} ✓"


JSON_DATA = {
    "scalars": [None, True, False, 0, -(2**62), 3.25, ""],
    "unicode": "héllo wörld ✓ 日本語 🚀 line\nbreak: colon",
    "nested": {"a": [1, {"b": [2, {"c": "deep"}]}], "empty": {}, "list": []},
    "large_text": "xyz✓" * 500_000,
    "many_ints": list(range(100_000)),
}
PICKLE_DATA = {
    **JSON_DATA,
    "args_tuple": (1, "two", [3.0, (4, 5)], {"k": (b"\x00\xff", None)}),
    "kwargs_dict": {"y": 3, "name": "zz", "opts": {1, 2, 3}, "c": 1 + 2j},
    "bytes": random.Random(0).randbytes(1_000_000),
    "frozen": frozenset({7, 8}),
}
#: name -> (function, args, kwargs)
CODE = {
    "add": (add, (1,), {"b": 5, "c": 10}),
    "uses_import": (uses_import, (10,), {}),
    "greet": (greet, ("Bob", "Smith"), {}),
    "raises": (raises, ("boom ✓",), {}),
    "closure": (make_closure(7), (6,), {}),
    "lambda": (square, (9,), {}),
}
SOURCE_CASES = ("add", "uses_import", "greet", "raises")  # source strategies need a def

DATA_STRATEGIES = {"00": PICKLE_DATA, "11": JSON_DATA, "13": JSON_DATA}
CODE_STRATEGIES = {"01": tuple(CODE), "12": SOURCE_CASES, "sd": SOURCE_CASES, "st": SOURCE_CASES}
OFFICIAL_ONLY_CODE = {"04": SOURCE_CASES, "03": SOURCE_CASES, "10": SOURCE_CASES}

# -- the two sides --------------------------------------------------------------------


def serializer(side, code=None, data=None):
    if side == "farcall":
        from farcall.serialize import Serializer

        return Serializer(code_strategy=code, data_strategy=data)
    from globus_compute_sdk.serialize import ComputeSerializer
    from globus_compute_sdk.serialize.base import SerializationStrategy

    def strategy(ident):
        return None if ident is None else type(SerializationStrategy.get_cached_by_id(ident + "\n"))

    return ComputeSerializer(strategy_code=strategy(code), strategy_data=strategy(data))


def canon(obj):
    """A JSON form that keeps Python types apart (tuple vs list, bytes, sets)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, float, str)):
        return obj
    if isinstance(obj, list):
        return [canon(x) for x in obj]
    if isinstance(obj, tuple):
        return {"tuple": [canon(x) for x in obj]}
    if isinstance(obj, dict):
        return {"dict": [[canon(k), canon(v)] for k, v in obj.items()]}
    if isinstance(obj, (set, frozenset)):
        return {type(obj).__name__: sorted(canon(x) for x in obj)}
    if isinstance(obj, bytes):
        return {"bytes": obj.hex()}
    if isinstance(obj, complex):
        return {"complex": [obj.real, obj.imag]}
    raise TypeError(f"no canonical form for {type(obj).__name__}")


def call(fn, args, kwargs):
    try:
        return canon(fn(*args, **kwargs))
    except Exception as exc:
        return {"raised": f"{type(exc).__name__}: {exc}"}


def code_strategies(side):
    return {**CODE_STRATEGIES, **(OFFICIAL_ONLY_CODE if side == "official" else {})}


def produce(side):
    out = {}
    for ident, cases in DATA_STRATEGIES.items():
        s = serializer(side, data=ident)
        out[ident] = {name: s.serialize(cases[name]) for name in cases}
    for ident, names in code_strategies(side).items():
        s = serializer(side, code=ident)
        out[ident] = {name: s.serialize(CODE[name][0]) for name in names}
    return out


def expect():
    out = {}
    for ident, cases in DATA_STRATEGIES.items():
        out[ident] = {name: canon(value) for name, value in cases.items()}
        if ident != "00":  # JSON turns tuples into lists: no expectation beyond JSON's own
            out[ident] = {name: canon(json.loads(json.dumps(v))) for name, v in cases.items()}
    for ident, names in {**CODE_STRATEGIES, **OFFICIAL_ONLY_CODE}.items():
        out[ident] = {name: call(*CODE[name]) for name in names}
    return out


def consume(side, produced):
    s = serializer(side)
    out = {}
    for ident, cases in produced.items():
        out[ident] = {}
        for name, wire in cases.items():
            obj = s.deserialize(wire)
            if callable(obj):
                _, args, kwargs = CODE[name]
                out[ident][name] = call(obj, args, kwargs)
            else:
                out[ident][name] = canon(obj)
    return out


if __name__ == "__main__":
    side, mode = sys.argv[1], sys.argv[2]
    if mode == "produce":
        result = produce(side)
    elif mode == "consume":
        result = consume(side, json.load(sys.stdin))
    else:
        result = expect()
    json.dump(result, sys.stdout)
