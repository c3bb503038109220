"""The unmodified official globus-compute-sdk 4.19 ``Executor`` against three farcall
processes behind the proxy: its results come over the AMQP result queue of its task
group. Every future resolves with the right value, a failure raises
``TaskExecutionFailed`` with the remote traceback, and a new Executor reloading the task
group gets every result."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import scale_kit as kit
from farcall_testkit.scaled import Ledger, ScaledStack

pytestmark = pytest.mark.compat

FUTURES = kit.scale(500, 10_000)
BATCH_SIZE = kit.scale(128, 1000)
#: Futures in flight when a fault lands.
FAULTED = kit.scale(300, 2000)
SCRIPT = Path(__file__).resolve().parent / "official_executor.py"


#: An endpoint that keeps a backlog, so a fault finds results still on their way.
SLOW_ENDPOINT: dict[str, Any] = {"workers": 1, "max_batch": 20, "prefetch": 20}


def compat_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "GLOBUS_SDK_ENVIRONMENT": "production"}


def test_official_executor_through_the_proxy(scaled: ScaledStack, compat_python: str,
                                             tmp_path: Path) -> None:
    endpoint = scaled.endpoint("official", workers=2, max_batch=200, prefetch=200)
    endpoint.start()
    began = time.monotonic()
    done = subprocess.run(
        [compat_python, str(SCRIPT), scaled.url, scaled.token, endpoint.endpoint_id,
         str(FUTURES), str(BATCH_SIZE)],
        capture_output=True, text=True, timeout=kit.scale(300, 1800), cwd=tmp_path,
        env=compat_env(tmp_path))
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["resolved"] == FUTURES and out["wrong"] == []
    failure = out["failure"]
    assert failure is not None and failure["type"] == "TaskExecutionFailed", failure
    assert "Traceback" in failure["remote"], failure
    assert "ValueError: exploded remotely: kaboom" in failure["remote"], failure
    assert out["reloaded"] == FUTURES + 1
    assert out["reload_wrong"] == [] and out["reload_failed"] == 1

    # One row per task, each ended once; the proxy spread the work over every process.
    [(tasks, ended)] = Ledger(scaled.db_url).fetch(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('success', 'failed')) "
        "FROM tasks WHERE task_group_id = :g", g=out["task_group_id"])
    assert tasks == ended == FUTURES + 1
    counts = scaled.proxy.snapshot()
    assert all(counts.get(f"to:{s.port}", 0) > 0 for s in scaled.services), counts
    kit.record("official executor", futures=FUTURES, seconds=seconds,
               executor_seconds=out["seconds"],
               futures_per_s=FUTURES / out["seconds"] if out["seconds"] else 0.0)


@pytest.mark.parametrize("kind", ["broker", "service"])
def test_official_executor_results_survive_a_fault(scaled: ScaledStack, compat_python: str,
                                                   tmp_path: Path, kind: str) -> None:
    """Every broker connection closed (the Executor's own result stream too), or the
    busiest process SIGKILLed, while results are on their way: every future still
    resolves with its value, and every task has one row, ended."""
    endpoint = scaled.endpoint(f"official-{kind}", **SLOW_ENDPOINT)
    endpoint.start()
    fault = kit.Fault(scaled, endpoint, kind)
    client = subprocess.Popen(
        [compat_python, str(SCRIPT), scaled.url, scaled.token, endpoint.endpoint_id,
         str(FAULTED), str(BATCH_SIZE), "pause"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env=compat_env(tmp_path), start_new_session=True)
    began = time.monotonic()
    try:
        first = client.stdout.readline()  # type: ignore[union-attr]
        assert first, client.stderr.read()  # type: ignore[union-attr]
        assert json.loads(first) == {"submitted": FAULTED}
        ledger = Ledger(scaled.db_url)
        ended_before = ledger.fetch(
            "SELECT count(*) FROM tasks WHERE endpoint_id = :e AND status = 'success'",
            e=endpoint.endpoint_id)[0][0]
        fault.inject()
        out_text, err_text = client.communicate("go\n", timeout=kit.scale(300, 1200))
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        fault.undo()
    assert client.returncode == 0, err_text[-4000:]
    out = json.loads(out_text.strip().splitlines()[-1])
    assert out["resolved"] == FAULTED and out["wrong"] == []
    assert out["failure"] is not None and "Traceback" in out["failure"]["remote"]
    assert out["reloaded"] == FAULTED + 1 and out["reload_wrong"] == []
    [(tasks, ended)] = ledger.fetch(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('success', 'failed')) "
        "FROM tasks WHERE task_group_id = :g", g=out["task_group_id"])
    assert tasks == ended == FAULTED + 1
    assert ended_before < FAULTED, "every result was in before the fault"
    kit.record(f"official executor, {kind} fault", futures=FAULTED, lost=0,
               ended_before_fault=ended_before, seconds=time.monotonic() - began,
               **fault.detail)
