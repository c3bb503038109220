"""Cancelling through a real service and a real endpoint process: the running task's
worker process is stopped, the tasks queued behind it never run, and the endpoint
serves the next task."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from farcall import Client, TaskCancelled


def hold(started, seconds):
    import os
    import time

    with open(started + ".part", "w") as file:
        file.write(str(os.getpid()))
    os.replace(started + ".part", started)
    time.sleep(seconds)
    return seconds


def mark(path):
    open(path, "w").close()
    return path


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def eventually(check, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_cancelled_running_sleeper_s_worker_is_gone_and_the_endpoint_serves_on(
        service, make_endpoint, tmp_path: Path) -> None:
    endpoint = make_endpoint(engine={"type": "process", "workers": 1, "worker_prefetch": 2})
    endpoint.start()
    client = Client(service.url, token=service.token)
    started, markers = tmp_path / "started", [tmp_path / f"ran-{n}" for n in range(3)]
    hold_id, mark_id = client.register_function(hold), client.register_function(mark)
    sleeper = client.run(str(started), 300, endpoint_id=endpoint.endpoint_id,
                         function_id=hold_id)
    queued = [client.run(str(m), endpoint_id=endpoint.endpoint_id, function_id=mark_id)
              for m in markers]
    assert eventually(started.exists), "the sleeper never started"
    pid = int(started.read_text())
    assert pid in endpoint.worker_pids()

    answers = client.cancel([sleeper, *queued])
    assert {a["outcome"] for a in answers.values()} == {"cancelled"}, answers
    assert eventually(lambda: gone(pid)), "the cancelled sleeper's worker still runs"
    with pytest.raises(TaskCancelled):
        client.get_result(sleeper)

    after = client.run(str(tmp_path / "after"), endpoint_id=endpoint.endpoint_id,
                       function_id=mark_id)
    assert client.wait([after], timeout=60)[after]["result"] == str(tmp_path / "after")
    assert eventually(lambda: len(endpoint.worker_pids()) == 1)  # a replacement serves
    assert not any(m.exists() for m in markers), "a cancelled queued task ran"
    log = endpoint.log()
    assert f"cancelled task(s) {sleeper}" in log and "stopped or dropped" in log
