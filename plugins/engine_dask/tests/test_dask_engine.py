"""The dask engine on a LocalCluster, without a service: what the engine contract
(test_dask_contract.py) does not cover. (It serves the official Client end to end in
endpoint/tests.)"""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from farcall.plugins import get_plugin_manager
from farcall.serialize import Serializer, pack_buffers  # noqa: E402
from farcall_endpoint.engines.interface import EngineContext  # noqa: E402
from farcall_endpoint.kinds import ENGINES  # noqa: E402
from farcall_endpoint.tasks import Task  # noqa: E402

SER = Serializer(code_strategy="sd")


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def make_task(task_id: str, *args, timeout=None, container=None) -> Task:
    payload = pack_buffers([SER.serialize(nap), SER.serialize(args), SER.serialize({})])
    return Task(task_id=task_id, function_id="f", payload=payload, timeout=timeout,
                container=container)


def test_dask_engine_refuses_execution_environments(tmp_path: Path) -> None:
    outcomes: queue.Queue = queue.Queue()
    engine = get_plugin_manager().select(ENGINES, "dask").factory({"workers": 1})
    engine.start(EngineContext(deliver=outcomes.put, execution={}, workdir=tmp_path))
    try:
        assert engine.status().total_workers == 1
        engine.submit([
            make_task("ok", 0.01),
            make_task("boxed", 0, container={"type": "venv", "location": "/x/bin/python"}),
        ])
        got = {}
        for _ in range(2):
            outcome = outcomes.get(timeout=60)
            got[outcome["task_id"]] = outcome
        assert SER.deserialize(got["ok"]["result"]) == 0.01
        assert "does not run execution environments" in got["boxed"]["exception"]
    finally:
        engine.stop()


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match="schedular"):
        get_plugin_manager().select(ENGINES, "dask").factory({"schedular": "tcp://x"})
