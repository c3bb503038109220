"""The parsl engine's configuration: the documented cluster examples build real
Parsl providers. (The engine runs tasks end to end in endpoint/tests.)"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("parsl")

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from farcall.plugins import get_plugin_manager
from farcall_endpoint.kinds import ENGINES  # noqa: E402
from farcall_engine_parsl.engine import ParslEngine, build_from_table  # noqa: E402

SLURM = """
[engine]
type = "parsl"
max_workers_per_node = 8
[engine.provider]
type = "SlurmProvider"
partition = "compute"
account = "my-allocation"
nodes_per_block = 2
init_blocks = 0
min_blocks = 0
max_blocks = 4
walltime = "02:00:00"
worker_init = "source ~/venvs/farcall/bin/activate"
[engine.provider.launcher]
type = "SrunLauncher"
"""

PBS = """
[engine]
type = "parsl"
max_workers_per_node = 4
[engine.provider]
type = "PBSProProvider"
queue = "workq"
account = "my-allocation"
cpus_per_node = 32
nodes_per_block = 1
init_blocks = 1
max_blocks = 2
walltime = "01:00:00"
worker_init = "module load python; source ~/venvs/farcall/bin/activate"
[engine.provider.launcher]
type = "MpiExecLauncher"
"""


@pytest.mark.parametrize(("text", "provider", "launcher"), [
    (SLURM, "SlurmProvider", "SrunLauncher"),
    (PBS, "PBSProProvider", "MpiExecLauncher"),
])
def test_documented_cluster_configs_build(text: str, provider: str, launcher: str) -> None:
    import parsl.providers

    table = tomllib.loads(text)["engine"]
    built = build_from_table(parsl.providers, table["provider"], "provider")
    assert type(built).__name__ == provider
    assert type(built.launcher).__name__ == launcher
    ParslEngine({k: v for k, v in table.items() if k != "type"})  # accepted as written


def test_bad_provider_is_named() -> None:
    import parsl.providers

    with pytest.raises(ValueError, match="NoSuchProvider"):
        build_from_table(parsl.providers, {"type": "NoSuchProvider"}, "provider")


def test_registered_as_plugin() -> None:
    record = get_plugin_manager().select(ENGINES, "parsl")
    assert isinstance(record.factory({"workers": 2}), ParslEngine)
