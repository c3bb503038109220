"""The dill strategies of the Globus Compute wire format."""

from __future__ import annotations

import base64
import binascii
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from farcall.errors import DeserializationError
from farcall.serialize.base import NestingStrategy, SerializationStrategy

from farcall_serializer_dill import fastpickle

if TYPE_CHECKING:
    from farcall.serialize.registry import StrategyRegistry

#: Input bytes per line of MIME base64 (76 characters): ``base64.MAXBINSIZE``, which
#: the type stubs do not declare.
_LINE_BYTES = 57


def _b64(data: bytes) -> str:
    # MIME base64 with line breaks, exactly what codecs' "base64" codec writes. Up to
    # one line's worth (most task arguments and results) it is one b2a_base64 call:
    # a tenth of encodebytes' time, which checks its input and loops in Python.
    if 0 < len(data) <= _LINE_BYTES:
        return binascii.b2a_base64(data).decode("ascii")
    return base64.encodebytes(data).decode("ascii")


def _unb64(body: str) -> bytes:
    return binascii.a2b_base64(body)


def _exec_named(name: str, source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace[name]


class DillDataBase64(SerializationStrategy):
    identifier = "00"
    for_code = False

    def dumps(self, obj: Any) -> str:
        return _b64(fastpickle.dumps_data(obj))

    def loads(self, body: str) -> Any:
        return fastpickle.loads(_unb64(body))


class DillCode(SerializationStrategy):
    identifier = "01"
    for_code = True

    def dumps(self, obj: Any) -> str:
        return _b64(fastpickle.dumps_function(obj))

    def loads(self, body: str) -> Any:
        return fastpickle.loads(_unb64(body))


class PureSourceDill(SerializationStrategy):
    """``name:source``; works for functions typed into an interpreter."""

    identifier = "sd"
    for_code = True

    def dumps(self, obj: Any) -> str:
        import dill.source

        return f"{obj.__name__}:{dill.source.getsource(obj, lstrip=True)}"

    def loads(self, body: str) -> Any:
        name, source = body.split(":", 1)
        return _exec_named(name, source)


class _DillSourceTuple(SerializationStrategy):
    """Deprecated strategies holding base64 of ``dill.dumps((name, source))``."""

    for_code = True

    def dumps(self, obj: Any) -> str:
        raise NotImplementedError(f"strategy {self.identifier} is deprecated: read only")

    def loads(self, body: str) -> Any:
        name, source = fastpickle.loads(_unb64(body))
        return _exec_named(name, source)


class DillCodeSource(_DillSourceTuple):
    identifier = "04"


class DillCodeTextInspect(_DillSourceTuple):
    identifier = "03"


class PickleCode(SerializationStrategy):
    identifier = "02"
    for_code = True

    def dumps(self, obj: Any) -> str:
        raise NotImplementedError("strategy 02 (pickle) is legacy: read only")

    def loads(self, body: str) -> Any:
        return pickle.loads(_unb64(body))


class CombinedCode(NestingStrategy):
    """Deprecated ``10``: ``":".join`` of header/body pairs, read the first that works."""

    identifier = "10"
    for_code = True

    def __init__(self, registry: StrategyRegistry) -> None:
        self.registry = registry

    def dumps(self, obj: Any) -> str:
        raise NotImplementedError("strategy 10 (CombinedCode) is deprecated: read only")

    def loads(self, body: str) -> Any:
        from farcall.serialize import Serializer

        return self.loads_with(body, Serializer(registry=self.registry).deserialize)

    def loads_with(self, body: str, read: Callable[[str], Any]) -> Any:
        parts = body.split(":")
        errors = []
        for header, encoded in zip(parts[::2], parts[1::2], strict=False):
            if len(header) != 3 or header[2] != "\n" or header[:2] == self.identifier:
                continue  # the source parts contain colons; skip what they break
            try:
                return read(header + encoded)
            except Exception as exc:
                errors.append(f"{header[:2]}: {type(exc).__name__}: {exc}")
        raise DeserializationError(
            "no part of the CombinedCode payload could be read: " + ("; ".join(errors) or "none")
        )
