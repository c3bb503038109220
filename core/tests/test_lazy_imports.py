"""Importing farcall, building a plugin manager and listing plugins stay cheap.

Heavy libraries (dill, cloudpickle, globus-sdk) load only when a strategy that needs
them is used. Each check runs in a fresh interpreter, since this test process has
long since imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("dill", "cloudpickle", "globus_sdk", "msgpack", "numpy")

SCRIPT = textwrap.dedent(
    """
    import contextlib
    import io
    import json
    import sys

    WATCHED = ("dill", "cloudpickle", "globus_sdk", "msgpack", "numpy", "pluggy", "click",
               "importlib_metadata", "requests", "farcall_serializer_dill",
               "farcall_serializer_cloudpickle", "farcall_serializer_source",
               "farcall_serializer_msgpack")
    stages = {}

    def record(stage):
        stages[stage] = sorted({m.split(".")[0] for m in sys.modules} & set(WATCHED))

    import farcall
    record("import farcall")
    import farcall.serialize
    record("import farcall.serialize")
    from farcall import Client
    record("from farcall import Client")
    import farcall.plugins
    farcall.plugins.get_plugin_manager()
    record("get_plugin_manager")

    from farcall.serialize import Serializer
    json_only = Serializer(data_strategy="11")
    wire = json_only.serialize({"a": [1, 2]})
    assert json_only.deserialize(wire) == {"a": [1, 2]}
    assert json_only.deserialize("13\\n" + json_only.pack_buffers([wire])) == {"a": [1, 2]}
    record("serialize with 11")

    from farcall.cli import cli
    with contextlib.redirect_stdout(io.StringIO()) as out:
        cli(["plugins", "--json"], standalone_mode=False)
    assert "serialization strategies" in json.loads(out.getvalue())
    record("farcall plugins")

    default = Serializer()
    record("Serializer()")
    wire = default.serialize({"a": 1})
    record("first use of the default")

    print(json.dumps({"stages": stages, "data_strategy": default.data_strategy,
                      "wire": wire[:3]}))
    """
)


@pytest.fixture(scope="module")
def imports() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_importing_farcall_imports_no_dependency(imports: dict) -> None:
    # Not even pluggy, click or requests: the Client and plugins load on first use.
    assert imports["stages"]["import farcall"] == []
    # The serialization facade needs neither pluggy nor click until a registry is built.
    assert imports["stages"]["import farcall.serialize"] == []
    # The Client's module needs pluggy's markers, not the entry points' metadata.
    assert "importlib_metadata" not in imports["stages"]["from farcall import Client"]


@pytest.mark.parametrize(
    "stage", ["get_plugin_manager", "serialize with 11", "farcall plugins", "Serializer()"]
)
def test_no_heavy_library_before_it_is_used(imports: dict, stage: str) -> None:
    loaded = set(imports["stages"][stage])
    assert not loaded & set(HEAVY), f"{stage} imported {sorted(loaded & set(HEAVY))}"


def test_plugins_are_loaded_but_their_strategies_are_not_built(imports: dict) -> None:
    loaded = set(imports["stages"]["get_plugin_manager"])
    assert {"pluggy", "farcall_serializer_dill"} <= loaded


def test_the_default_data_strategy_imports_dill_at_first_use(imports: dict) -> None:
    assert imports["data_strategy"] == "00"
    assert imports["wire"] == "00\n"
    assert "dill" in imports["stages"]["first use of the default"]
    assert "cloudpickle" not in imports["stages"]["first use of the default"]
    assert "msgpack" not in imports["stages"]["first use of the default"]
