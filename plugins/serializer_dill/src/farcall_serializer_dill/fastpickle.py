"""Pickles that ``dill.loads`` reads exactly as it reads ``dill.dumps`` output, made faster.

``dill.dumps`` runs the pure-Python pickler, which dominates the cost of a task.
These functions use the standard library's C pickler instead whenever its output
means the same thing to ``dill.loads`` (and to the official Globus Compute
deserializer, which is ``dill.loads``), and fall back to dill in every other case:

* data: a plain ``pickle.dumps`` is used unless it fails or mentions ``__main__``
  (dill pickles ``__main__`` classes by value, pickle only by name);
* functions: a function dill would pickle by value is reduced to
  ``types.FunctionType(code, globals, name, defaults, closure)`` with the code as
  ``marshal`` bytes and the globals as ``vars(importlib.import_module(module))``,
  which is what dill's own reduction means; anything unusual raises and falls back.

Loading uses ``pickle.loads`` when the bytes mention nothing dill treats specially.
"""

from __future__ import annotations

import importlib
import io
import marshal
import pickle
import sys
import types
from typing import Any

import dill

PROTOCOL: int = dill.settings["protocol"]
_DILL_MARKERS = (b"dill", b"__builtin__", b"__main__")


class _Fallback(Exception):
    """Raised inside the fast pickler when only dill can pickle an object faithfully."""


def dumps_data(obj: Any) -> bytes:
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL)
    except Exception:
        return dill.dumps(obj, protocol=PROTOCOL)
    if b"__main__" in data:
        return dill.dumps(obj, protocol=PROTOCOL)
    return data


def loads(data: bytes) -> Any:
    if any(marker in data for marker in _DILL_MARKERS):
        return dill.loads(data)
    return pickle.loads(data)


def dumps_function(fn: Any) -> bytes:
    if type(fn) is types.FunctionType:
        buffer = io.BytesIO()
        try:
            _FunctionPickler(buffer, protocol=PROTOCOL).dump(fn)
            return buffer.getvalue()
        except Exception:  # _Fallback, or anything dill may still handle
            pass
    return dill.dumps(fn, protocol=PROTOCOL)


def _is_importable(fn: types.FunctionType) -> bool:
    """True when pickle's by-name reference finds this very function, as dill checks."""
    module_name = fn.__module__
    if module_name in ("__main__", None) or "<locals>" in fn.__qualname__:
        return False
    module = sys.modules.get(module_name)
    if module is None:
        return False
    found: Any = module
    for part in fn.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is fn


class _GlobalsOf:
    """Stands in for a module's ``__dict__`` (exact dicts cannot be reduced)."""

    __slots__ = ("module",)

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def __reduce__(self) -> tuple[Any, ...]:
        return (vars, (self.module,))


class _FunctionPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is types.FunctionType:
            return NotImplemented if _is_importable(obj) else _reduce_function(obj)
        if kind is types.CodeType:
            return (marshal.loads, (marshal.dumps(obj),))
        if kind is types.CellType:
            try:
                return (types.CellType, (obj.cell_contents,))
            except ValueError:
                return (types.CellType, ())
        if obj is types.FunctionType or obj is types.CellType:
            return (getattr, (types, "FunctionType" if obj is types.FunctionType else "CellType"))
        if kind is types.ModuleType:
            name = obj.__name__
            if sys.modules.get(name) is not obj:
                raise _Fallback
            return (importlib.import_module, (name,))
        if kind is _GlobalsOf:
            return obj.__reduce__()
        if getattr(obj if isinstance(obj, type) else kind, "__module__", None) == "__main__":
            raise _Fallback
        return NotImplemented


def _reduce_function(fn: types.FunctionType) -> tuple[Any, ...]:
    module = sys.modules.get(fn.__module__) if fn.__module__ else None
    if module is not None and fn.__globals__ is vars(module):
        fn_globals: Any = _GlobalsOf(module)
    else:
        fn_globals = {"__name__": fn.__module__}
    attributes: dict[str, Any] = {"__module__": fn.__module__}
    for name in ("__kwdefaults__", "__annotations__", "__doc__"):
        value = getattr(fn, name, None)
        if value:
            attributes[name] = value
    if fn.__qualname__ != fn.__name__:
        attributes["__qualname__"] = fn.__qualname__
    args = (fn.__code__, fn_globals, fn.__name__, fn.__defaults__, fn.__closure__)
    return (types.FunctionType, args, (fn.__dict__ or None, attributes))
