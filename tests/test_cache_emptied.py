"""With the service's in-memory caches emptied between submission and result
(``TaskLifecycle.forget_cached``), every client still sees every result: the farcall
``Client`` (``wait``, ``get_batch_result``), the ``Executor`` and the official SDK."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")

from farcall import Client, Executor  # noqa: E402
from farcall_testkit.official_scenario import run_official_client  # noqa: E402
from farcall_testkit.service import AppServer, MiniWorker  # noqa: E402

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")


def triple(x):
    return 3 * x


class Service:
    """The service in this process, so a test can reach its lifecycle."""

    def __init__(self, server: AppServer, app: Any, token: str) -> None:
        self.url = server.url
        self.token = token
        self.lifecycle = app.state.farcall.lifecycle

    def serve(self, endpoint_id: str) -> MiniWorker:
        worker = MiniWorker(self.url, self.token, endpoint_id, max_tasks=100, wait=1.0)
        worker.start()
        return worker


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    from farcall_service import admin
    from farcall_service.app import create_app
    from farcall_service.settings import Settings

    app = create_app(Settings(home=tmp_path / "service", rate_limit=0))
    store = app.state.farcall.store
    admin.add_user(store, "alice")
    token = admin.create_token(store, "alice")
    with AppServer(app) as server:
        yield Service(server, app, token)


def _endpoint(client: Client) -> str:
    answer = client.transport.request("POST", "/v3/endpoints", json={"endpoint_name": "e"})
    return str(answer["endpoint_id"])


def test_the_client_waits_and_reads_results_after_the_caches_went(service: Service) -> None:
    client = Client(service.url, token=service.token)
    eid = _endpoint(client)
    fid = client.register_function(triple)
    batch = client.create_batch()
    for x in range(20):
        batch.add(x, endpoint_id=eid, function_id=fid)
    ids = client.batch_run(batch)
    single = client.run(7, endpoint_id=eid, function_id=fid)
    service.lifecycle.forget_cached()  # submitted, nothing run yet
    worker = service.serve(eid)
    try:
        waited = client.wait(ids, timeout=60, progress=False)
        assert [waited[tid]["result"] for tid in ids] == [3 * x for x in range(20)]
        # A fresh client has nothing cached either: it asks the service.
        fresh = Client(service.url, token=service.token)
        deadline = time.monotonic() + 30
        while fresh.get_batch_result([single])[single]["pending"]:
            assert time.monotonic() < deadline, "the result never showed"
            time.sleep(0.05)
        batch_result = fresh.get_batch_result([*ids, single])
        assert [batch_result[tid]["result"] for tid in ids] == [3 * x for x in range(20)]
        assert batch_result[single]["result"] == 21
        assert fresh.get_result(single) == 21
    finally:
        worker.stop()
    assert not worker.errors


def test_executor_futures_resolve_after_the_caches_went(service: Service) -> None:
    client = Client(service.url, token=service.token)
    eid = _endpoint(client)
    with Executor(endpoint_id=eid, client=client) as executor:
        futures = [executor.submit(triple, x) for x in range(50)]
        deadline = time.monotonic() + 30
        while len(service.lifecycle.memory) < 50:  # all accepted, none run
            assert time.monotonic() < deadline, "the tasks were not accepted"
            time.sleep(0.01)
        service.lifecycle.forget_cached()
        worker = service.serve(eid)
        try:
            done, not_done = concurrent.futures.wait(futures, timeout=60)
            assert not not_done
            assert [f.result() for f in futures] == [3 * x for x in range(50)]
        finally:
            worker.stop()


@pytest.mark.compat
@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_the_official_sdk_sees_every_result_after_the_caches_went(
    service: Service, tmp_path: Path
) -> None:
    workers: list[MiniWorker] = []

    def serve(endpoint_id: str) -> None:
        # The scenario has submitted its first task and waits for the endpoint.
        service.lifecycle.forget_cached()
        workers.append(service.serve(endpoint_id))

    try:
        out = run_official_client(COMPAT_PYTHON, service.url, service.token, tmp_path, serve,
                                  timeout=180)
    finally:
        for worker in workers:
            worker.stop()
    assert out["pending_first"] is True
    assert out["run_result"] == 42
    assert out["batch_double"] == [0, 2, 4, 6, 8]
    assert out["batch_add"] == [10, 11, 12, 13, 14]
    assert out["task"] == {"pending": False, "status": "success", "result": 42}
    assert len(workers) == 1 and not workers[0].errors
