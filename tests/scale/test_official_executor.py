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

import pytest
import scale_kit as kit
from farcall_testkit.scaled import Ledger, ScaledStack

pytestmark = pytest.mark.compat

FUTURES = kit.scale(500, 10_000)
BATCH_SIZE = kit.scale(128, 1000)
SCRIPT = Path(__file__).resolve().parent / "official_executor.py"


def test_official_executor_through_the_proxy(scaled: ScaledStack, compat_python: str,
                                             tmp_path: Path) -> None:
    endpoint = scaled.endpoint("official", workers=2, max_batch=200, prefetch=200)
    endpoint.start()
    began = time.monotonic()
    done = subprocess.run(
        [compat_python, str(SCRIPT), scaled.url, scaled.token, endpoint.endpoint_id,
         str(FUTURES), str(BATCH_SIZE)],
        capture_output=True, text=True, timeout=kit.scale(300, 1800), cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
             "GLOBUS_SDK_ENVIRONMENT": "production"})
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
