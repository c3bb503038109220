"""The fast pickling paths must mean exactly what dill's output means."""

from __future__ import annotations

import pickle

import dill
import pytest
from farcall_serializer_dill import fastpickle

ATTRIBUTES = (
    "__name__", "__qualname__", "__doc__", "__defaults__", "__kwdefaults__",
    "__annotations__", "__dict__", "__module__",
)


def make_functions():
    scale = 3
    offset = [10]

    def plain(x, y=2, *, z: int = 4) -> int:
        """Documented."""
        return x * y + z

    def closure(x):
        import math

        return math.floor(x * scale) + offset[0]

    def nested_closure(x):
        return closure(x) + plain(x)

    def tagged(x):
        return x

    tagged.tag = {"owner": "me"}
    lam = lambda v, w=1: (v, w, scale)  # noqa: E731
    return {"plain": plain, "closure": closure, "nested": nested_closure, "tagged": tagged,
            "lambda": lam}


CALLS = {"plain": ((3,), {"z": 1}), "closure": ((2.5,), {}), "nested": ((2,), {}),
         "tagged": (("t",), {}), "lambda": ((5,), {})}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_function_reads_back_like_dills_own_output(name):
    fn = make_functions()[name]
    fast = fastpickle.dumps_function(fn)
    assert b"_create_function" not in fast, "the fast path was not taken"
    ours, theirs = dill.loads(fast), dill.loads(dill.dumps(fn))
    args, kwargs = CALLS[name]
    assert ours(*args, **kwargs) == theirs(*args, **kwargs) == fn(*args, **kwargs)
    for attribute in ATTRIBUTES:
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    assert ours.__globals__ is theirs.__globals__


def test_plain_pickle_loads_fast_functions_without_dill():
    fn = make_functions()["closure"]
    assert pickle.loads(fastpickle.dumps_function(fn))(1) == fn(1)


def test_importable_functions_go_by_reference_like_dill():
    assert dill.loads(fastpickle.dumps_function(fastpickle.loads)) is fastpickle.loads


def test_self_referencing_closure_falls_back_to_dill():
    def countdown(n):
        return 0 if n == 0 else 1 + countdown(n - 1)

    data = fastpickle.dumps_function(countdown)
    assert b"_create_function" in data
    assert fastpickle.loads(data)(5) == 5


def test_non_function_callables_use_dill():
    import functools

    part = functools.partial(int, base=2)
    assert fastpickle.loads(fastpickle.dumps_function(part))("101") == 5


def test_plain_data_uses_the_c_pickler():
    obj = (1, "two", [3.0, {"k": b"\x00"}], {4, 5})
    data = fastpickle.dumps_data(obj)
    assert data == pickle.dumps(obj, protocol=fastpickle.PROTOCOL)
    assert dill.loads(data) == fastpickle.loads(data) == obj


def test_data_referring_to_main_goes_through_dill():
    main_class = type("Point", (), {"__module__": "__main__",
                                    "__init__": lambda s, v: setattr(s, "v", v)})
    data = fastpickle.dumps_data([main_class(3)])
    assert b"dill" in data, "a __main__ class must be pickled by value, as dill does"
    assert fastpickle.loads(data)[0].v == 3


def test_unpicklable_data_falls_back_to_dill():
    obj = {"fn": lambda x: x + 1}
    assert fastpickle.loads(fastpickle.dumps_data(obj))["fn"](1) == 2
