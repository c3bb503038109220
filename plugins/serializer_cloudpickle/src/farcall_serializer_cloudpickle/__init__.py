"""farcall plugin: cloudpickle strategies. cloudpickle is imported only when used."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from farcall.plugins import hookimpl
from farcall.plugins.types import SerializationStrategyType

if TYPE_CHECKING:
    from farcall.serialize.base import SerializationStrategy
    from farcall.serialize.registry import StrategyRegistry


def _factory(for_code: bool) -> Callable[[StrategyRegistry], SerializationStrategy]:
    def build(_registry: StrategyRegistry) -> SerializationStrategy:
        from farcall_serializer_cloudpickle.strategies import CloudpickleCode, CloudpickleData

        return CloudpickleCode() if for_code else CloudpickleData()

    return build


@hookimpl
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    return [
        SerializationStrategyType("c0", "CloudpickleData", False, _factory(False),
                                  description="base64 of cloudpickle.dumps(obj)"),
        SerializationStrategyType("c1", "CloudpickleCode", True, _factory(True),
                                  description="base64 of cloudpickle.dumps(fn)"),
    ]
