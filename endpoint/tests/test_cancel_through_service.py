"""A cancel sent to the service reaches a serving farcall endpoint: the claim answer's
``cancel`` list, the claimer, the runner and the process engine, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_endpoint.configure import configure_endpoint
from farcall_endpoint.runner import EndpointRunner
from farcall_testkit.sleepers import alive, hold, mark
from farcall_testkit.waiting import wait_for


@pytest.mark.parametrize("workers", [1, 2], ids=["engine-full", "engine-with-room"])
def test_a_running_sleeper_cancelled_at_the_service_loses_its_worker_and_the_endpoint_serves_on(
        service, api, tmp_path: Path, workers: int) -> None:
    """With one worker the engine is full while the sleeper runs, so the endpoint hears
    of the cancel from a claim of no task; with two, from its waiting claim."""
    config = configure_endpoint("local", home=tmp_path / "ep", base_url=service.url,
                                token=service.token, claim_wait=20.0,
                                engine={"type": "process", "workers": workers,
                                        "worker_prefetch": 0})
    runner = EndpointRunner(config)
    runner.start()
    started = tmp_path / "started"
    try:
        assert runner.ready.wait(60) and runner.error is None
        (sleeper,) = api.submit(runner.endpoint_id, api.register_function(hold),
                                [(str(started), 300.0)])
        wait_for(started.exists, what="the sleeper's start")
        pid = int(started.read_text())
        answer = api.call("POST", "/farcall/v1/tasks/cancel", json={"task_ids": [sleeper]})
        assert answer["results"][sleeper]["outcome"] == "cancelled"
        wait_for(lambda: not alive(pid), what="the sleeper's worker gone")
        ledger = runner._ledger
        # Its outcome (the endpoint's own "cancelled") was acknowledged, not recorded.
        wait_for(lambda: not (ledger.outstanding or ledger.fresh or ledger.unacked))
        doc = api.call("GET", f"/v2/tasks/{sleeper}")
        assert doc["cancelled"] is True and "cancelled by" in doc["exception"]
        (after,) = api.submit(runner.endpoint_id, api.register_function(mark),
                              [(str(tmp_path / "after"),)])
        assert api.wait([after])[after]["status"] == "success"
    finally:
        runner.stop(timeout=60)


def test_a_thousand_tasks_cancelled_while_queued_never_run_when_the_endpoint_starts(
        service, api, tmp_path: Path) -> None:
    config = configure_endpoint("local", home=tmp_path / "ep", base_url=service.url,
                                token=service.token, claim_wait=5.0,
                                engine={"type": "process", "workers": 2})
    runner = EndpointRunner(config)
    api.register_endpoint(runner.endpoint_id)  # not running yet
    fn = api.register_function(mark)
    markers = tmp_path / "markers"
    markers.mkdir()
    queued = api.submit(runner.endpoint_id, fn, [(str(markers / str(n)),) for n in range(1000)])
    answers = api.call("POST", "/farcall/v1/tasks/cancel", json={"task_ids": queued})
    assert {a["outcome"] for a in answers["results"].values()} == {"cancelled"}
    runner.start()
    try:
        assert runner.ready.wait(60) and runner.error is None
        (after,) = api.submit(runner.endpoint_id, fn, [(str(tmp_path / "after"),)])
        assert api.wait([after])[after]["status"] == "success"  # it serves
    finally:
        runner.stop(timeout=60)
    assert list(markers.iterdir()) == []  # 0 of the 1,000 ran
    docs = api.wait(queued[:5])
    assert all(doc["cancelled"] is True for doc in docs.values())
