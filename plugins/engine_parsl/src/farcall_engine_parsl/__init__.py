"""farcall plugin: the ``parsl`` engine. Parsl is imported only when the engine starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall_endpoint.kinds import EngineType


def _parsl(options: Mapping[str, Any]) -> Any:
    from farcall_engine_parsl.engine import ParslEngine

    return ParslEngine(options)


#: What ``farcall endpoint configure --engine parsl`` writes under ``[engine]``.
TEMPLATE = """\
# HighThroughputExecutor arguments (see Parsl's documentation): workers started
# on each node, and the cores each worker needs.
max_workers_per_node = {workers}
# cores_per_worker = 1.0
# Block scaling: "simple" starts blocks while tasks wait and stops idle ones after
# max_idletime seconds; "none" keeps init_blocks running.
# strategy = "simple"
# max_idletime = 120.0

# Where the workers run: a class of parsl.providers by `type`, with its arguments.
[engine.provider]
type = "LocalProvider"
init_blocks = 1
min_blocks = 0
max_blocks = 1
# On a Slurm cluster instead, for example:
# type = "SlurmProvider"
# partition = "debug"
# account = "my-allocation"
# nodes_per_block = 1
# walltime = "00:30:00"
# worker_init = "source ~/farcall-venv/bin/activate"
# [engine.provider.launcher]
# type = "SrunLauncher"
"""


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [EngineType("parsl", _parsl, "Parsl's HighThroughputExecutor with any Parsl provider",
                       TEMPLATE)]
