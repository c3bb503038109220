"""farcall plugin: the ``dask`` engine. Dask is imported only when the engine starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall_endpoint.kinds import EngineType


def _dask(options: Mapping[str, Any]) -> Any:
    from farcall_engine_dask.engine import DaskEngine

    return DaskEngine(options)


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [EngineType("dask", _dask, "a Dask distributed cluster, or a LocalCluster")]
