"""farcall plugin: the msgpack data strategy. msgpack is imported only when used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from farcall.plugins import hookimpl
from farcall.plugins.types import SerializationStrategyType

if TYPE_CHECKING:
    from farcall.serialize.base import SerializationStrategy
    from farcall.serialize.registry import StrategyRegistry


def _build(_registry: StrategyRegistry) -> SerializationStrategy:
    from farcall_serializer_msgpack.strategy import MsgpackData

    return MsgpackData()


@hookimpl
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    return [
        SerializationStrategyType(
            "mp",
            "MsgpackData",
            False,
            _build,
            data_only=True,
            description="base64 of msgpack, plain data only",
        ),
    ]
