"""AllCodeStrategies (``12``) and AllDataStrategies (``13``).

They serialize an object with every installed strategy of their kind and pack the
results, so a receiver can read whichever form it supports. The members are the
official ones in the official order, then any other installed strategies of the same
kind, so payloads stay readable by the official deserializer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from farcall.errors import DeserializationError, SerializationError
from farcall.serialize.base import NestingStrategy
from farcall.serialize.packing import pack_buffers, unpack_buffers

if TYPE_CHECKING:
    from farcall.serialize.registry import StrategyRegistry


class CombiningStrategy(NestingStrategy):
    """Packs the output of several strategies; reads the first member that works."""

    preferred: ClassVar[tuple[str, ...]]

    def __init__(self, registry: StrategyRegistry) -> None:
        self.registry = registry
        self._members: list[str] | None = None

    def members(self) -> list[str]:
        """Identifiers used to serialize, computed once from what is installed."""
        if self._members is None:
            installed = self.registry.identifiers(for_code=self.for_code, writable=True)
            ordered = [i for i in self.preferred if i in installed]
            ordered += sorted(i for i in installed if i not in ordered)
            self._members = [
                i for i in ordered if not isinstance(self.registry.strategy(i), CombiningStrategy)
            ]
        return self._members

    def dumps(self, obj: Any) -> str:
        buffers, errors = [], []
        for ident in self.members():
            try:
                buffers.append(f"{ident}\n{self.registry.strategy(ident).dumps(obj)}")
            except Exception as exc:
                errors.append(f"{ident}: {type(exc).__name__}: {exc}")
        if not buffers:
            raise SerializationError(
                "no member strategy could serialize the object: " + ("; ".join(errors) or "none")
            )
        return pack_buffers(buffers)

    def loads(self, body: str) -> Any:
        from farcall.serialize.facade import Serializer

        return self.loads_with(body, Serializer(registry=self.registry).deserialize)

    def loads_with(self, body: str, read: Callable[[str], Any]) -> Any:
        """Read members with ``read`` (the caller's serializer, with its allowlist)."""
        errors = []
        for buffer in unpack_buffers(body):
            try:
                return read(buffer)
            except Exception as exc:
                errors.append(f"{buffer[:2]!r}: {exc}")
        raise DeserializationError(
            "no member of the combined payload could be read: " + ("; ".join(errors) or "empty")
        )


class AllCodeStrategies(CombiningStrategy):
    identifier = "12"
    for_code = True
    preferred = ("st", "sd", "01")


class AllDataStrategies(CombiningStrategy):
    identifier = "13"
    for_code = False
    preferred = ("11", "00")
