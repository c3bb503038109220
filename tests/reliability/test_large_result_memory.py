"""THE test of large results: one streamed end to end (endpoint -> service -> blob
store -> farcall's Client, and into an official client's ``GET /v2/tasks``) while the
service's peak resident memory grows by less than 64 MB, whatever the result's size.

100 MB in the normal suite; 500 MB with ``FARCALL_SOAK=1`` (``make soak``). The
figures are printed: the result's size, the service's resident memory before, its
peak (VmHWM) after, and the growth.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import reliability_kit as kit
import requests
from farcall import Client, TaskPending

MB = 1024 * 1024
#: The value the function returns, in characters (its serialized form is a third larger).
SIZE = kit.scale(100 * MB, 500 * MB)
#: The bound on the service's peak memory growth while the result passes through.
MAX_GROWTH = 64 * MB


def make_text(n):
    return "m" * n


make_text.__module__ = "__main__"  # sent by value


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of process ``pid``, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def result_of(client: Client, task_id: str, timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.get_result(task_id)
        except TaskPending:
            assert time.monotonic() < deadline, f"no result within {timeout} s"
            time.sleep(0.2)


def test_a_large_result_streams_end_to_end_in_bounded_service_memory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with kit.live_stack(tmp_path) as stack:
        endpoint = stack.endpoint("memory", workers=1)
        endpoint.start()
        client = Client(stack.url, token=stack.token)
        fn = client.register_function(make_text)
        # Warm every path a large result takes, so what is measured is its size.
        warm = client.run(2 * MB, endpoint_id=endpoint.endpoint_id, function_id=fn)
        assert len(result_of(client, warm)) == 2 * MB
        assert stack.service.process is not None
        pid = stack.service.process.pid
        before = memory(pid)

        task_id = client.run(SIZE, endpoint_id=endpoint.endpoint_id, function_id=fn)
        value = result_of(client, task_id)
        assert len(value) == SIZE and value[:1] == "m" and value[-1:] == "m"
        del value
        streamed = 0  # an official client's read: the whole document, streamed
        with requests.get(f"{stack.url}/v2/tasks/{task_id}", stream=True, timeout=600,
                          headers={"Authorization": f"Bearer {stack.token}"}) as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_content(MB):
                streamed += len(chunk)
        assert streamed > SIZE

        after = memory(pid)
        growth = after["VmHWM"] - before["VmRSS"]
        with capsys.disabled():
            print(f"\nlarge result: {SIZE // MB} MB value, {streamed // MB} MB streamed to "
                  f"GET /v2/tasks; service RSS before {before['VmRSS'] // MB} MB, peak after "
                  f"{after['VmHWM'] // MB} MB, growth {growth / MB:.1f} MB "
                  f"(bound {MAX_GROWTH // MB} MB)")
        kit.record("large result", size_mb=SIZE // MB, service_growth_mb=round(growth / MB, 1))
        assert growth < MAX_GROWTH
