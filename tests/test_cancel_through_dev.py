"""Cancellation end to end through ``farcall dev``, as a user runs it: a running
sleeper and 1,000 tasks queued behind it are cancelled; the sleeper's worker process
is stopped, none of the queued tasks runs, and the endpoint serves the next task."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("farcall_dev")

from farcall import Client, TaskCancelled  # noqa: E402
from farcall_testkit.dev import running_dev  # noqa: E402
from farcall_testkit.sleepers import alive, hold, mark  # noqa: E402
from farcall_testkit.waiting import wait_for  # noqa: E402

QUEUED = 1000


def test_a_running_sleeper_and_a_thousand_queued_tasks_cancelled_through_farcall_dev(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with running_dev(home, ["--workers", "1"]):
        monkeypatch.setenv("FARCALL_HOME", str(home))
        monkeypatch.delenv("FARCALL_BASE_URL", raising=False)
        monkeypatch.delenv("FARCALL_TOKEN", raising=False)
        gcc = Client()
        endpoint = gcc.profile.endpoint_id
        started, ran = tmp_path / "started", tmp_path / "ran"
        ran.mkdir()
        hold_id, mark_id = gcc.register_function(hold), gcc.register_function(mark)
        sleeper = gcc.run(str(started), 300, endpoint_id=endpoint, function_id=hold_id)
        wait_for(started.exists, what="the sleeper's start")
        pid = int(started.read_text())
        batch = gcc.create_batch()
        for n in range(QUEUED):
            batch.add(str(ran / str(n)), endpoint_id=endpoint, function_id=mark_id)
        queued = gcc.batch_run(batch)

        answers = gcc.cancel([sleeper, *queued])
        assert len(answers) == QUEUED + 1
        assert {a["outcome"] for a in answers.values()} == {"cancelled"}
        wait_for(lambda: not alive(pid), what="the sleeper's worker gone")
        with pytest.raises(TaskCancelled):
            gcc.get_result(sleeper)

        after = gcc.run(str(tmp_path / "after"), endpoint_id=endpoint, function_id=mark_id)
        assert gcc.wait([after], timeout=60)[after]["result"] == str(tmp_path / "after")
        assert sorted(ran.iterdir()) == [], "a cancelled queued task ran"
        assert gcc.cancel(after)["outcome"] != "cancelled"  # finished: a no-op
    print(f"cancelled: 1 running sleeper (worker {pid} stopped) and {QUEUED} queued, 0 ran")
