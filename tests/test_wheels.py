"""Wheels, installed as users install them: ``pip install farcall farcall-serializer-dill``.

Builds wheels of the core, the dill and msgpack plugins, a third-party plugin and a broken plugin,
then installs them one at a time into a single fresh virtual environment and checks,
after each install, what the environment can do. The steps run in order in one test
because each builds on the last (and one environment keeps the runtime down).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from farcall.plugins import get_plugin_manager
from farcall.serialize import Serializer
from farcall.serialize.registry import StrategyRegistry
from farcall_testkit.wheels import check, clean_env, run, write_project

pytestmark = pytest.mark.wheels

REPO = Path(__file__).resolve().parent.parent

# A value only a dill payload carries faithfully (JSON has no tuples).
DILL_VALUE = {"answer": 42, "pair": (1, 2)}

THIRD_PARTY = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-test-reversed"
        version = "0.1.0"
        dependencies = ["farcall"]

        [project.entry-points.farcall]
        test_reversed = "farcall_test_reversed"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_test_reversed"]
    """,
    "farcall_test_reversed/__init__.py": """
        import json

        from farcall.plugins import hookimpl
        from farcall.plugins.types import SerializationStrategyType
        from farcall.serialize.base import SerializationStrategy


        class ReversedJSON(SerializationStrategy):
            identifier = "t1"
            for_code = False

            def dumps(self, obj):
                return json.dumps(obj)[::-1]

            def loads(self, body):
                return json.loads(body[::-1])


        @hookimpl
        def farcall_serialization_strategies():
            return [SerializationStrategyType("t1", "ReversedJSON", False,
                                              lambda _registry: ReversedJSON())]
    """,
}

BROKEN = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-test-broken"
        version = "0.1.0"
        dependencies = ["farcall"]

        [project.entry-points.farcall]
        test_broken = "farcall_test_broken"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_test_broken"]
    """,
    "farcall_test_broken/__init__.py": """
        raise ImportError("farcall_test_broken is broken on purpose")
    """,
}

# Run inside the fresh environment: JSON must work; the dill payload may or may not.
PROBE = textwrap.dedent(
    """
    import json
    import sys

    from farcall.serialize import DeserializationError, Serializer

    serializer = Serializer()
    out = {
        "code_strategy": serializer.code_strategy,
        "data_strategy": serializer.data_strategy,
        "json": serializer.deserialize(Serializer(data_strategy="11").serialize({"a": [1, 2]})),
    }
    try:
        out["dill_value"] = repr(serializer.deserialize(sys.stdin.read()))
    except DeserializationError as exc:
        out["dill_error"] = str(exc)
    print(json.dumps(out))
    """
)


MSGPACK_PROBE = (
    "from farcall.serialize import Serializer; s = Serializer(data_strategy='mp'); "
    "print(repr(s.deserialize(s.serialize((1, b'\\x00')))))"
)


def test_wheels_install_and_plugins_are_discovered(tmp_path: Path) -> None:
    # -- build the four wheels in one pip run ---------------------------------------
    dist = tmp_path / "dist"
    third_party = write_project(tmp_path / "third_party", THIRD_PARTY)
    broken = write_project(tmp_path / "broken", BROKEN)
    check(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--quiet", "-w", str(dist), str(REPO / "core"),
               str(REPO / "plugins" / "serializer_dill"),
               str(REPO / "plugins" / "serializer_msgpack"), str(third_party), str(broken)],
              cwd=tmp_path))

    def wheel(prefix: str) -> str:
        (found,) = dist.glob(f"{prefix}-0.1.0-*.whl")
        return str(found)

    # -- one fresh environment, without pip of its own: the running pip installs into it
    venv = tmp_path / "venv"
    check(run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path))
    python = venv / "bin" / "python"
    farcall_command = venv / "bin" / "farcall"

    def pip_install(path: str) -> None:
        check(run([sys.executable, "-m", "pip", "--python", str(python), "install",
                   "--disable-pip-version-check", "--quiet", path], cwd=tmp_path))

    dill_payload = Serializer(
        data_strategy="00", registry=StrategyRegistry(get_plugin_manager())
    ).serialize(DILL_VALUE)
    assert dill_payload.startswith("00\n")

    def probe() -> dict:
        proc = check(run([str(python), "-c", PROBE], cwd=tmp_path, input=dill_payload))
        return json.loads(proc.stdout)

    def plugins_json() -> dict:
        proc = check(run([str(farcall_command), "plugins", "--json"], cwd=tmp_path))
        return json.loads(proc.stdout)

    # (a) the core alone: JSON works, a dill payload says what to install ---------------
    pip_install(wheel("farcall"))
    core_only = probe()
    assert core_only["json"] == {"a": [1, 2]}
    assert (core_only["code_strategy"], core_only["data_strategy"]) == (None, "11")
    assert "dill_value" not in core_only
    assert "unknown strategy header '00'" in core_only["dill_error"]
    assert "farcall-serializer-dill" in core_only["dill_error"]
    listing = plugins_json()
    assert listing["serialization strategies"] == ["11", "12", "13"]
    assert {entry["distribution"] for entry in listing["plugins"]} == {"farcall"}

    # (b) pip install the dill plugin: the same script now reads the payload -------------
    pip_install(wheel("farcall_serializer_dill"))
    with_dill = probe()
    assert with_dill["dill_value"] == repr(DILL_VALUE)
    assert "dill_error" not in with_dill
    assert (with_dill["code_strategy"], with_dill["data_strategy"]) == ("01", "00")
    listing = plugins_json()
    assert {"name": "serializer_dill", "distribution": "farcall-serializer-dill"} in listing[
        "plugins"
    ]
    assert {"00", "01", "sd"} <= set(listing["serialization strategies"])

    # (b') the msgpack plugin: mp is listed and keeps a tuple a tuple ------------------
    pip_install(wheel("farcall_serializer_msgpack"))
    listing = plugins_json()
    assert "mp" in listing["serialization strategies"]
    assert {"name": "serializer_msgpack",
            "distribution": "farcall-serializer-msgpack"} in listing["plugins"]
    round_trip = check(run([str(python), "-c", MSGPACK_PROBE], cwd=tmp_path))
    assert round_trip.stdout.strip() == "(1, b'\\x00')"

    # (c) a third-party plugin is discovered by being installed -------------------------
    assert "t1" not in listing["serialization strategies"]
    pip_install(wheel("farcall_test_reversed"))
    listing = plugins_json()
    assert "t1" in listing["serialization strategies"]
    assert {"name": "test_reversed", "distribution": "farcall-test-reversed"} in listing["plugins"]

    # (d) a broken plugin stops the command with a message naming it --------------------
    pip_install(wheel("farcall_test_broken"))
    proc = run([str(farcall_command), "plugins"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "'test_broken'" in proc.stderr
    assert "farcall-test-broken" in proc.stderr
    assert "broken on purpose" in proc.stderr
    assert "FARCALL_BLOCK_PLUGINS=test_broken" in proc.stderr

    # ... and blocking it, as the message says, brings the command back.
    proc = check(run([str(farcall_command), "plugins", "--json"], cwd=tmp_path,
                     env=clean_env(FARCALL_BLOCK_PLUGINS="test_broken"), timeout=120))
    assert "t1" in json.loads(proc.stdout)["serialization strategies"]
