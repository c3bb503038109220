"""The core's own strategies: JSON data and the two combining strategies."""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins import hookimpl
from farcall.plugins.types import SerializationStrategyType


@hookimpl(trylast=True)
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    from farcall.serialize.combining import AllCodeStrategies, AllDataStrategies
    from farcall.serialize.json_data import JSONData

    return [
        SerializationStrategyType(
            "11", "JSONData", False, lambda _r: JSONData(), description="json.dumps",
            data_only=True,
        ),
        SerializationStrategyType(
            "12", "AllCodeStrategies", True, AllCodeStrategies,
            description="every installed code strategy, packed",
        ),
        SerializationStrategyType(
            "13", "AllDataStrategies", False, AllDataStrategies,
            description="every installed data strategy, packed",
        ),
    ]
