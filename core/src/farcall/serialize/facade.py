"""The one object the SDK, the service and the endpoint use to (de)serialize."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from farcall.errors import DeserializationError, SerializationError, UnknownPluginError
from farcall.serialize.base import NestingStrategy, SerializationStrategy
from farcall.serialize.packing import pack_buffers, unpack_buffers
from farcall.serialize.registry import StrategyRegistry, default_registry

log = logging.getLogger(__name__)

#: Preferred defaults, first installed wins: the official SDK's (dill) when present.
DEFAULT_CODE_STRATEGIES = ("01", "st", "c1")
DEFAULT_DATA_STRATEGIES = ("00", "11")


class Serializer:
    """Serializes callables with a code strategy and everything else with a data strategy.

    ``code_strategy`` and ``data_strategy`` take an identifier (``"01"``) or a
    strategy name (``"DillCode"``); ``allowed`` is an optional allowlist of the same,
    checked on every deserialization, including the members of combined payloads.
    """

    def __init__(
        self,
        code_strategy: str | None = None,
        data_strategy: str | None = None,
        allowed: Iterable[str] | None = None,
        *,
        registry: StrategyRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.code_strategy = self._choose(code_strategy, True, DEFAULT_CODE_STRATEGIES)
        self.data_strategy = self._choose(data_strategy, False, DEFAULT_DATA_STRATEGIES)
        self.allowed: frozenset[str] | None = (
            None if allowed is None else frozenset(self._allowed_id(a) for a in allowed)
        )
        self._readers: dict[str, SerializationStrategy] = {}

    # -- choosing strategies ----------------------------------------------------------

    def _resolve(self, spec: str) -> str:
        """An identifier or a strategy name, as an identifier."""
        if spec in self.registry.types:
            return spec
        for ident, record in self.registry.types.items():
            if record.name == spec:
                return ident
        return self.registry.type_of(spec).identifier  # raises UnknownPluginError with hints

    def identifier(self, spec: str) -> str:
        """The identifier ``spec`` names (an identifier or a strategy name); two
        characters that no installed strategy has pass through, as in allowlists."""
        return self._allowed_id(spec)

    def _allowed_id(self, spec: str) -> str:
        """Allowlists may name identifiers that are not installed: refusing needs no plugin."""
        if len(spec) == 2 and spec not in self.registry.types:
            return spec
        return self._resolve(spec)

    def _choose(self, spec: str | None, for_code: bool, defaults: tuple[str, ...]) -> str | None:
        kind = "code" if for_code else "data"
        if spec is None:
            installed = [d for d in defaults if d in self.registry.types]
            if installed and installed[0] != defaults[0]:
                log.info(
                    "farcall-serializer-dill is not installed: %s uses %s (%s)",
                    kind,
                    installed[0],
                    self.registry.types[installed[0]].name,
                )
            return installed[0] if installed else None
        ident = self._resolve(spec)
        record = self.registry.types[ident]
        if record.for_code != for_code:
            raise SerializationError(f"{record.name} ({ident}) is not a {kind} strategy")
        if record.read_only:
            raise SerializationError(f"{record.name} ({ident}) can only read old payloads")
        return ident

    # -- serialize --------------------------------------------------------------------

    def serialize(self, obj: Any) -> str:
        """``obj`` as a header and a body, with the code or the data strategy."""
        for_code = callable(obj)
        kind = "code" if for_code else "data"
        ident = self.code_strategy if for_code else self.data_strategy
        if ident is None:
            source = " or farcall-serializer-source" if for_code else ""
            raise SerializationError(
                f"no {kind} serialization strategy is installed; install farcall-serializer-dill "
                f"(pip install farcall-serializer-dill){source}"
            )
        strategy = self.registry.strategy(ident)
        try:
            return f"{ident}\n{strategy.dumps(obj)}"
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"{kind} strategy {self.registry.types[ident].name} ({ident}) could not "
                f"serialize {type(obj).__name__}: {type(exc).__name__}: {exc}"
            ) from exc

    # -- deserialize ------------------------------------------------------------------

    def _reader(self, ident: str) -> SerializationStrategy:
        try:
            return self._readers[ident]
        except KeyError:
            pass
        if self.allowed is not None and ident not in self.allowed:
            names = ", ".join(sorted(self.allowed))
            raise DeserializationError(
                f"strategy {ident!r} is not allowed here (allowed: {names})"
            )
        try:
            reader = self.registry.strategy(ident)
        except UnknownPluginError as exc:
            raise DeserializationError(f"unknown strategy header {ident!r}: {exc}") from None
        except Exception as exc:  # the plugin is installed but cannot build its strategy
            raise DeserializationError(
                f"strategy {ident!r} is installed but could not be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._readers[ident] = reader
        return reader

    def deserialize(self, payload: str) -> Any:
        """The object a serialized string stands for."""
        if not isinstance(payload, str):
            raise DeserializationError(
                f"a serialized payload is a str, not {type(payload).__name__}"
            )
        if len(payload) < 3 or payload[2] != "\n":
            raise DeserializationError(
                f"payload does not start with a strategy header: {payload[:20]!r}"
            )
        ident = payload[:2]
        reader = self._reader(ident)
        try:
            if isinstance(reader, NestingStrategy):
                return reader.loads_with(payload[3:], self.deserialize)
            return reader.loads(payload[3:])
        except DeserializationError:
            raise
        except Exception as exc:
            raise DeserializationError(
                f"strategy {self.registry.types[ident].name} ({ident}) could not read the "
                f"payload: {type(exc).__name__}: {exc}"
            ) from exc

    # -- packed buffers ---------------------------------------------------------------

    pack_buffers = staticmethod(pack_buffers)
    unpack_buffers = staticmethod(unpack_buffers)

    def unpack_and_deserialize(self, packed: str) -> list[Any]:
        """Deserialize every buffer of a packed string, in order."""
        return [self.deserialize(buffer) for buffer in unpack_buffers(packed)]
