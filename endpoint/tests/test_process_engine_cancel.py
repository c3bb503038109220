"""The process engine's cancel with a worker of an older farcall (in an environment's
image, say) that cannot skip queued tasks: it says so, and the late result is dropped."""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path

from farcall.serialize import Serializer, pack_buffers
from farcall_endpoint.engines.interface import EngineContext
from farcall_endpoint.engines.process import ProcessEngine
from farcall_endpoint.tasks import Task

SER = Serializer(code_strategy="sd")

#: A worker as before cancels: its "ready" does not offer to skip tasks.
OLD_WORKER = """
import multiprocessing.connection as mc, sys
send = mc.Connection.send
def old_send(self, obj):
    if isinstance(obj, tuple) and obj and obj[0] == "ready":
        obj = ("ready", {k: v for k, v in obj[1].items() if k != "cancel"})
    return send(self, obj)
mc.Connection.send = old_send
from farcall_endpoint.engines.worker import main
sys.exit(main())
"""


def hold(started, seconds):
    import time

    open(started, "w").close()
    time.sleep(seconds)
    return seconds


def mark(path):
    open(path, "w").close()
    return path


def make_task(fn, *args, container=None) -> Task:
    payload = pack_buffers([SER.serialize(fn), SER.serialize(args), SER.serialize({})])
    return Task(task_id=f"{fn.__name__}-{time.monotonic_ns()}", function_id="f",
                payload=payload, container=container)


def test_a_worker_that_cannot_skip_runs_the_cancelled_task_and_its_result_is_dropped(
        tmp_path: Path) -> None:
    python = tmp_path / "old-python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -c '{OLD_WORKER}'\n")
    python.chmod(0o700)
    container = {"type": "venv", "location": str(python)}
    outcomes: queue.Queue = queue.Queue()
    engine = ProcessEngine({"workers": 1, "worker_prefetch": 2})
    engine.start(EngineContext(deliver=outcomes.put, execution={}, workdir=tmp_path / "engine"))
    try:
        started, marker = tmp_path / "started", tmp_path / "ran"
        first = make_task(hold, str(started), 1.0, container=container)
        queued = make_task(mark, str(marker), container=container)
        engine.submit([first, queued])
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the first task never started"
            time.sleep(0.02)
        assert engine.cancel([queued.task_id]) == [queued.task_id]
        got = {o["task_id"]: o for o in (outcomes.get(timeout=60) for _ in range(2))}
        assert got[first.task_id]["status"] == "success"
        assert ("the task was cancelled; it ended before it could be stopped; its result was "
                "discarded") in got[queued.task_id]["exception"]
        assert marker.exists()  # it ran: the old worker could not skip it
        time.sleep(0.3)
        assert outcomes.empty()
    finally:
        engine.stop()
