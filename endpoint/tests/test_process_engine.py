"""The process engine on its own: prefetched tasks survive their worker dying."""

from __future__ import annotations

import os
import queue
import signal
import time
from pathlib import Path

import pytest
from farcall.serialize import Serializer, pack_buffers
from farcall_endpoint.engines.interface import EngineContext
from farcall_endpoint.engines.process import ProcessEngine
from farcall_endpoint.tasks import Task

SER = Serializer(code_strategy="sd")  # source text: workers need not import this module


def sleeper(path, seconds):
    import os
    import time

    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


def plus_one(x):
    return x + 1


def make_task(task_id: str, fn, *args, timeout: float | None = None) -> Task:
    payload = pack_buffers([SER.serialize(fn), SER.serialize(args), SER.serialize({})])
    return Task(task_id=task_id, function_id="f", payload=payload, timeout=timeout)


@pytest.fixture
def engine(tmp_path: Path):
    outcomes: queue.Queue = queue.Queue()
    eng = ProcessEngine({"workers": 1, "worker_prefetch": 4})
    eng.start(EngineContext(deliver=outcomes.put, execution={}, workdir=tmp_path / "engine"))
    yield eng, outcomes
    eng.stop()


def collect(outcomes: queue.Queue, count: int) -> dict[str, dict]:
    got = {}
    while len(got) < count:
        outcome = outcomes.get(timeout=60)
        assert outcome["task_id"] not in got, "two outcomes for one task"
        got[outcome["task_id"]] = outcome
    return got


def wait_for_file(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return int(path.read_text())


def test_queued_tasks_of_a_dead_worker_run_elsewhere(engine, tmp_path: Path) -> None:
    eng, outcomes = engine
    marker = tmp_path / "pid"
    eng.submit([make_task("victim", sleeper, str(marker), 60),
                *(make_task(f"q{i}", plus_one, i) for i in range(6))])
    pid = wait_for_file(marker)
    assert eng.status().total_workers == 1 and eng.status().idle_workers == 0
    os.kill(pid, signal.SIGKILL)
    got = collect(outcomes, 7)
    assert got["victim"]["status"] == "failed"
    assert "died (killed by SIGKILL)" in got["victim"]["exception"]
    assert [SER.deserialize(got[f"q{i}"]["result"]) for i in range(6)] == list(range(1, 7))


def test_time_limit_kills_only_the_late_task(engine, tmp_path: Path) -> None:
    eng, outcomes = engine
    eng.submit([make_task("late", sleeper, str(tmp_path / "p"), 60, timeout=0.5),
                *(make_task(f"q{i}", plus_one, i, timeout=30) for i in range(3))])
    got = collect(outcomes, 4)
    assert "exceeded its time limit of 0.5 s" in got["late"]["exception"]
    assert all(got[f"q{i}"]["status"] == "success" for i in range(3))
    assert outcomes.empty()
