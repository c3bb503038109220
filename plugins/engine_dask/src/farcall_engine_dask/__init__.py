"""farcall plugin: the ``dask`` engine. Dask is imported only when the engine starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall_endpoint.kinds import EngineType


def _dask(options: Mapping[str, Any]) -> Any:
    from farcall_engine_dask.engine import DaskEngine

    return DaskEngine(options)


#: What ``farcall endpoint configure --engine dask`` writes under ``[engine]``.
TEMPLATE = """\
# The local Dask cluster: worker processes, and the threads of each (1: a task that
# holds the GIL does not stall others).
workers = {workers}
threads_per_worker = 1
# Or use a running scheduler (workers then come from that cluster):
# scheduler_address = "tcp://scheduler.example.org:8786"
# More LocalCluster arguments:
# [engine.cluster]
# memory_limit = "4GiB"
"""


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [EngineType("dask", _dask, "a Dask distributed cluster, or a LocalCluster",
                       TEMPLATE)]
