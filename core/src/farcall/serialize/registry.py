"""The installed strategies of one plugin manager, instantiated on first use."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from farcall.errors import UnknownPluginError
from farcall.serialize.base import SerializationStrategy

if TYPE_CHECKING:
    from farcall.plugins.manager import FarcallPluginManager
    from farcall.plugins.types import SerializationStrategyType


class StrategyRegistry:
    """Maps wire identifiers to strategy instances, building each one lazily."""

    def __init__(self, plugin_manager: FarcallPluginManager) -> None:
        self.plugin_manager = plugin_manager
        self.types: dict[str, SerializationStrategyType] = (
            plugin_manager.serialization_strategies()
        )
        self._instances: dict[str, SerializationStrategy] = {}

    def identifiers(self, *, for_code: bool | None = None, writable: bool = False) -> list[str]:
        return [
            ident
            for ident, record in self.types.items()
            if (for_code is None or record.for_code == for_code)
            and not (writable and record.read_only)
        ]

    def type_of(self, identifier: str) -> SerializationStrategyType:
        return self.plugin_manager.get_serialization_strategy(identifier)

    def strategy(self, identifier: str) -> SerializationStrategy:
        """The instance for ``identifier``; UnknownPluginError names what to install."""
        try:
            return self._instances[identifier]
        except KeyError:
            pass
        record = self.type_of(identifier)
        instance = record.factory(self)
        if not isinstance(instance, SerializationStrategy) or instance.for_code != record.for_code:
            raise UnknownPluginError(
                f"the factory of serialization strategy {identifier!r} ({record.name}) did not "
                "build a SerializationStrategy of the declared kind"
            )
        self._instances[identifier] = instance
        return instance


@functools.lru_cache(maxsize=1)
def default_registry() -> StrategyRegistry:
    """The registry of the default plugin manager, built on first use."""
    from farcall.plugins.manager import get_plugin_manager

    return StrategyRegistry(get_plugin_manager())
