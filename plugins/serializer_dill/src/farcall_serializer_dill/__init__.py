"""farcall plugin: dill serialization strategies. dill is imported only when used."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from farcall.plugins import hookimpl
from farcall.plugins.types import SerializationStrategyType

if TYPE_CHECKING:
    from farcall.serialize.base import SerializationStrategy
    from farcall.serialize.registry import StrategyRegistry


def _lazy(class_name: str) -> Callable[[StrategyRegistry], SerializationStrategy]:
    def factory(registry: StrategyRegistry) -> SerializationStrategy:
        from farcall_serializer_dill import strategies

        cls = getattr(strategies, class_name)
        strategy: SerializationStrategy = (
            cls(registry) if class_name == "CombinedCode" else cls()
        )
        return strategy

    return factory


@hookimpl
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    return [
        SerializationStrategyType("00", "DillDataBase64", False, _lazy("DillDataBase64"),
                                  description="base64 of dill.dumps(obj)"),
        SerializationStrategyType("01", "DillCode", True, _lazy("DillCode"),
                                  description="base64 of dill.dumps(fn)"),
        SerializationStrategyType("sd", "PureSourceDill", True, _lazy("PureSourceDill"),
                                  description="name:source from dill.source.getsource"),
        SerializationStrategyType("04", "DillCodeSource", True, _lazy("DillCodeSource"),
                                  read_only=True, description="deprecated; read only"),
        SerializationStrategyType("03", "DillCodeTextInspect", True, _lazy("DillCodeTextInspect"),
                                  read_only=True, description="deprecated; read only"),
        SerializationStrategyType("10", "CombinedCode", True, _lazy("CombinedCode"),
                                  read_only=True, description="deprecated; read only"),
        SerializationStrategyType("02", "PickleCode", True, _lazy("PickleCode"),
                                  read_only=True, description="legacy; read only"),
    ]
