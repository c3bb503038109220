"""farcall plugin: functions as plain source text (``st``), readable by any Python."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import SerializationStrategyType
from farcall.serialize.base import SerializationStrategy


class PureSourceTextInspect(SerializationStrategy):
    """``name:source`` from :func:`inspect.getsource`, rebuilt with ``exec``."""

    identifier = "st"
    for_code = True

    def dumps(self, obj: Any) -> str:
        return f"{obj.__name__}:{inspect.getsource(obj)}"

    def loads(self, body: str) -> Any:
        name, source = body.split(":", 1)
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        return namespace[name]


@hookimpl
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    return [
        SerializationStrategyType(
            "st", "PureSourceTextInspect", True, lambda _registry: PureSourceTextInspect(),
            description="name:source from inspect.getsource",
        )
    ]
