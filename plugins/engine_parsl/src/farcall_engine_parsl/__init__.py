"""farcall plugin: the ``parsl`` engine. Parsl is imported only when the engine starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall_endpoint.kinds import EngineType


def _parsl(options: Mapping[str, Any]) -> Any:
    from farcall_engine_parsl.engine import ParslEngine

    return ParslEngine(options)


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [EngineType("parsl", _parsl, "Parsl's HighThroughputExecutor with any Parsl provider")]
