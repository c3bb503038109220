"""Cancels at a serving endpoint: held tasks are dropped or stopped, each ends in one
cancelled outcome, and what the endpoint owes the service stays right."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from farcall_endpoint.cancelling import CancelGate
from farcall_endpoint.configure import configure_endpoint
from farcall_endpoint.engines.interface import EngineContext
from farcall_endpoint.engines.thread import ThreadEngine
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.runner import EndpointRunner
from farcall_endpoint.spool import SPOOL_FILE, ResultSpool
from farcall_endpoint.tasks import Task
from farcall_testkit.sleepers import hold, mark
from farcall_testkit.waiting import wait_for


def test_a_task_cancelled_before_it_reaches_the_engine_never_runs(tmp_path: Path) -> None:
    """The claimer marks a task outstanding before handing it over: a cancel in between
    is held by the gate, and the hand-over drops the task with its cancelled outcome."""
    from farcall.serialize import Serializer, pack_buffers

    serializer = Serializer(code_strategy="sd")

    def task(marker: Path) -> Task:
        payload = pack_buffers([serializer.serialize(mark), serializer.serialize((str(marker),)),
                                serializer.serialize({})])
        return Task(task_id=str(uuid.uuid4()), function_id="mark", payload=payload)

    ledger = Ledger(result_batch=10)
    engine = ThreadEngine({"workers": 1})
    engine.start(EngineContext(deliver=ledger.deliver, execution={}, workdir=tmp_path))
    gate = CancelGate(engine, ledger)
    try:
        doomed, after = task(tmp_path / "doomed-ran"), task(tmp_path / "after-ran")
        with ledger.lock:
            ledger.outstanding.update([doomed.task_id, after.task_id])
        assert gate.cancel([doomed.task_id]) == []
        gate.submit([doomed, after])
        wait_for(lambda: len(ledger.fresh) == 2)
        by_id = {o["task_id"]: o for o in ledger.fresh}
        assert "the task was cancelled" in by_id[doomed.task_id]["exception"]
        assert by_id[after.task_id]["status"] == "success"
        assert ledger.outstanding == set()
        assert (tmp_path / "after-ran").exists()
        assert not (tmp_path / "doomed-ran").exists(), "the cancelled task ran"
    finally:
        engine.stop()


def test_the_runner_cancels_what_it_holds_and_owes_nothing_after(
        service, api, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A running sleeper's worker is stopped, the tasks queued behind it never run,
    every one of them is reported cancelled, the spool ends empty and the endpoint
    serves the next task."""
    config = configure_endpoint("local", home=tmp_path / "ep", base_url=service.url,
                                token=service.token, claim_wait=1.0,
                                engine={"type": "process", "workers": 1, "worker_prefetch": 2})
    runner = EndpointRunner(config)
    runner.start()
    started, markers = tmp_path / "started", [tmp_path / f"ran-{n}" for n in range(4)]
    try:
        assert runner.ready.wait(60) and runner.error is None
        sleeper = api.submit(runner.endpoint_id, api.register_function(hold),
                             [(str(started), 30.0)])
        queued = api.submit(runner.endpoint_id, api.register_function(mark),
                            [(str(m),) for m in markers])
        ids = sleeper + queued
        ledger = runner._ledger
        wait_for(started.exists, what="the sleeper's start")
        wait_for(lambda: ledger.outstanding >= set(ids), what="every task claimed")
        pid = int(started.read_text())
        with caplog.at_level("INFO", logger="farcall_endpoint.cancelling"):
            runner.cancel([*ids, "not-a-task-here"])
        docs = api.wait(ids, timeout=60)
        for task_id in ids:
            assert docs[task_id]["status"] == "failed"
            assert "the task was cancelled" in docs[task_id]["exception"]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert f"cancelled task(s) {', '.join(ids)}: stopped or dropped" in logged
        assert "not-a-task-here ignored" in logged
        assert not any(m.exists() for m in markers), "a cancelled queued task ran"
        (after,) = api.submit(runner.endpoint_id, api.register_function(mark),
                              [(str(tmp_path / "after"),)])
        assert api.wait([after])[after]["status"] == "success"
        wait_for(lambda: not (ledger.outstanding or ledger.fresh or ledger.unacked))
    finally:
        runner.stop(timeout=60)
    assert ResultSpool(config.directory / SPOOL_FILE).load() == []
